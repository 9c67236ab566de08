"""Attribution maps: Grad-CAM, Grad-CAM++, vanilla gradients, SmoothGrad, integrated gradients.

Every method explains one score per image: a class's logit (classification), or one detected
box's log-score, log p(object) + log p(class | object) of the anchor that predicted it (detection).
The input is the prepared uint8 batch of zoo.predict (N, H, W, C), taken as float pixels; the
model's own preprocessing layers are part of what is differentiated.

- gradcam (Selvaraju et al. 2017): ReLU(sum_k w_k A_k), w_k the spatial mean of dScore/dA_k, A the
  feature map of one layer (default: the last convolutional one).
- gradcam++ (Chattopadhay et al. 2018): weights sum_ij alpha_ij^k ReLU(dScore/dA_ij^k) with the
  closed-form alpha of the paper (second and third powers of the gradient).
- saliency (Simonyan et al. 2014): max over colour channels of |dScore/dx|.
- smoothgrad (Smilkov et al. 2017): the gradient averaged over noisy copies of the image
  (noise std a fraction of the 0..255 range), then max over channels of its absolute value.
- integrated-gradients (Sundararajan et al. 2017): (x - baseline) times the gradient averaged
  along the straight path from a black baseline, summed over channels, absolute value.

Maps come back at the feature map's resolution (CAM) or the input's (gradient methods).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from zoo.errors import UsageError

Method = Literal["gradcam", "gradcam++", "saliency", "smoothgrad", "integrated-gradients"]
METHODS: tuple[str, ...] = ("gradcam", "gradcam++", "saliency", "smoothgrad", "integrated-gradients")
CAM_METHODS: tuple[str, ...] = ("gradcam", "gradcam++")


@dataclass(frozen=True)
class MethodOptions:
    samples: int = 25  # smoothgrad: noisy copies averaged (Smilkov et al. use 50; 25 looks the same)
    noise: float = 0.15  # smoothgrad: noise std as a fraction of the pixel range (the paper: 10-20%)
    steps: int = 32  # integrated gradients: Riemann steps from the black baseline (the paper: 20-300)
    seed: int = 0  # smoothgrad noise, so a map is reproducible


def check_method(method: str) -> str:
    key = str(method).strip().lower().replace("_", "-")
    aliases = {"gradcampp": "gradcam++", "grad-cam": "gradcam", "grad-cam++": "gradcam++", "ig": "integrated-gradients",
               "integrated-gradient": "integrated-gradients", "vanilla": "saliency", "gradient": "saliency"}
    key = aliases.get(key, key)
    if key not in METHODS:
        raise UsageError(f"`method` must be one of {', '.join(METHODS)}. Received: method={method!r}.")
    return key


class Explainer:
    """Maps for batches of prepared images of one model, one method.

    `explain(batch, targets)` -> (maps (N, h, w) float32, index (N,) int, outputs): `targets` is,
    per image, a class index or -1 for the top class (classification), or (anchor row, class)
    for detection; `outputs` are the model's outputs for the batch (probabilities for a
    classifier), for the caller's records.
    """

    def __init__(self, model: Any, meta: dict, *, method: str = "gradcam", layer: Any = None,
                 task: str = "classification", anchors: int | None = None, options: MethodOptions | None = None):
        from zoo.explaining.layers import head_activation, resolve_layer
        from zoo.inference import external_normalisation, input_size

        self.model = model
        self.method = check_method(method)
        self.task = task
        self.options = options or MethodOptions()
        if self.options.samples < 1 or self.options.steps < 1 or self.options.noise < 0:
            raise UsageError(f"samples and steps must be >= 1 and noise >= 0. Received: samples={self.options.samples}, "
                             f"steps={self.options.steps}, noise={self.options.noise}.")
        self.layer = resolve_layer(model, layer) if self.method in CAM_METHODS else None
        self.norm = external_normalisation(model, meta)
        self.input_shape = input_size(model, meta)
        self.kind = head_activation(model)[1] if task == "classification" else None
        if task == "detection" and not anchors:
            raise UsageError("Explaining a detection model needs its number of anchors per cell.")
        self.anchors_count = anchors
        self._fn = None

    # --- the traced step: one forward pass and one gradient ---

    def _step(self):
        if self._fn is not None:
            return self._fn
        import tensorflow as tf

        from zoo.explaining.layers import capture
        from zoo.inference import normalise

        model, layer, cam = self.model, self.layer, self.method in CAM_METHODS
        dtype = tf.as_dtype(getattr(model.inputs[0], "dtype", "float32") or "float32")

        def body(x, target):
            with tf.GradientTape() as tape:
                tape.watch(x)
                # capture's patches are active while this body is traced; the graph keeps what they did
                with capture(model, [layer] if cam else [], logits=self.task == "classification") as store:
                    pixels = tf.cast(x, dtype)
                    if self.norm is not None:
                        pixels = normalise(pixels, self.norm, dtype=dtype.as_numpy_dtype)
                    out = model(pixels, training=False)
                out = _first(out)
                out = tf.cast(out, tf.float32)
                score, index, shown = self._score(out, target)
                total = tf.reduce_sum(score)  # images are independent: one gradient gives each its own
            wrt = store[layer.name] if cam else x
            grads = tape.gradient(total, wrt)
            if cam:
                features, grads = tf.cast(wrt, tf.float32), tf.cast(grads, tf.float32)
                return _cam(features, grads, plus=self.method == "gradcam++"), index, shown
            return grads, index, shown

        # one trace for every batch size: the batch dimension is left free
        height, width, channels = self.input_shape
        target_shape = (None, 2) if self.task == "detection" else (None,)
        self._fn = tf.function(body, input_signature=[tf.TensorSpec((None, height, width, channels), tf.float32),
                                                      tf.TensorSpec(target_shape, tf.int32)])
        return self._fn

    def _score(self, out, target):
        """(score to differentiate (N,), explained index (N,), outputs to report) in TensorFlow."""
        import tensorflow as tf

        if self.task == "detection":
            n = tf.shape(out)[0]
            per_anchor = tf.reshape(out, [n, -1, out.shape[-1] // self.anchors_count])
            cell = tf.gather(per_anchor, target[:, 0], batch_dims=1)  # (N, 5 + C)
            cls_logp = tf.nn.log_softmax(cell[:, 5:], axis=-1)
            score = tf.math.log_sigmoid(cell[:, 4]) + tf.gather(cls_logp, target[:, 1], batch_dims=1)
            return score, target[:, 1], out
        z = tf.reshape(out, [tf.shape(out)[0], -1])
        if z.shape[-1] == 1:  # one sigmoid unit: class 1 is z, class 0 is -z (or 1 - p without a sigmoid)
            z = tf.concat([-z, z], axis=-1) if self.kind == "sigmoid" else tf.concat([1.0 - z, z], axis=-1)
            shown = tf.nn.sigmoid(z[:, 1:]) if self.kind == "sigmoid" else z[:, 1:]
        elif self.kind == "softmax":
            shown = tf.nn.softmax(z, axis=-1)
        elif self.kind == "sigmoid":
            shown = tf.nn.sigmoid(z)
        else:
            shown = z
        top = tf.argmax(z, axis=-1, output_type=tf.int32)
        index = tf.where(target >= 0, target, top)
        score = tf.gather(z, index, batch_dims=1)
        return score, index, shown

    # --- public ---

    def explain(self, batch: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import tensorflow as tf

        fn = self._step()
        x = np.asarray(batch, dtype=np.float32)
        targets = np.asarray(targets, dtype=np.int32)
        result, index, shown = fn(tf.constant(x), tf.constant(targets))
        result, index, shown = result.numpy(), index.numpy(), shown.numpy()
        if self.method in CAM_METHODS:
            return result.astype(np.float32), index, shown
        fixed = targets if self.task == "detection" else index.astype(np.int32)  # later passes explain the same class
        if self.method == "saliency":
            grads = result
        elif self.method == "smoothgrad":
            rng = np.random.default_rng(self.options.seed)
            grads = np.zeros_like(x)
            for _ in range(self.options.samples):
                noisy = x + rng.normal(0.0, self.options.noise * 255.0, x.shape).astype(np.float32)
                grads += fn(tf.constant(noisy), tf.constant(fixed))[0].numpy()
            grads /= self.options.samples
        else:  # integrated gradients, right Riemann sum from a black image
            total = np.zeros_like(x)
            steps = self.options.steps
            for k in range(1, steps + 1):
                total += fn(tf.constant(x * (k / steps)), tf.constant(fixed))[0].numpy()
            attribution = x * (total / steps)
            return np.abs(attribution.sum(axis=-1)).astype(np.float32), index, shown
        return np.abs(grads).max(axis=-1).astype(np.float32), index, shown


def _first(out):
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        out = out[0]
    return out


def _cam(features, grads, *, plus: bool):
    """Grad-CAM / Grad-CAM++ maps (N, h, w) from a feature map and its gradient (N, h, w, C)."""
    import tensorflow as tf

    if plus:
        g2, g3 = grads**2, grads**3
        total = tf.reduce_sum(features, axis=[1, 2], keepdims=True)
        denominator = 2.0 * g2 + total * g3
        alpha = tf.math.divide_no_nan(g2, tf.where(tf.abs(denominator) > 0, denominator, tf.ones_like(denominator)))
        weights = tf.reduce_sum(alpha * tf.nn.relu(grads), axis=[1, 2])
    else:
        weights = tf.reduce_mean(grads, axis=[1, 2])
    return tf.nn.relu(tf.einsum("nhwc,nc->nhw", features, weights))


def explainer_for(model: Any, meta: dict, *, method: str, layer: Any = None, task: str = "classification",
                  anchors: int | None = None, options: MethodOptions | None = None) -> Explainer:
    """An Explainer for this model and configuration, cached on the model object: repeated
    zoo.explain calls on one model reuse its traced step instead of tracing it again."""
    import json

    fresh = Explainer(model, meta, method=method, layer=layer, task=task, anchors=anchors, options=options)
    key = (fresh.method, fresh.layer.name if fresh.layer is not None else None, task, fresh.options,
           json.dumps(fresh.norm, sort_keys=True, default=str), fresh.kind, fresh.anchors_count)
    cache = getattr(model, "_zoo_explainers", None)
    if cache is None:
        cache = {}
        try:
            # object.__setattr__: not model state, so Keras must not track it (as zoo.inference does)
            object.__setattr__(model, "_zoo_explainers", cache)
        except (AttributeError, TypeError):
            return fresh
    return cache.setdefault(key, fresh)
