"""What neurons see: activation maximisation from noise, and deep dream on a given image.

Activation maximisation (Erhan et al. 2009; Simonyan et al. 2014) ascends the gradient of one
channel's mean activation with respect to the input pixels. Without regularisation the result is
high-frequency noise that excites the channel without looking like anything; the regularisers that
make it legible (Yosinski et al. 2015, Understanding Neural Networks Through Deep Visualization;
Olah et al. 2017, Feature Visualization) are applied at every step:
- jitter: the image is shifted by a few random pixels before each forward pass (robustness to
  translation, so no single pixel pattern can be exploited);
- frequency penalty: the gradient of the image's total variation is subtracted, and every few
  steps the image is blurred with a small Gaussian (Yosinski's blur), damping high frequencies;
- decay: the image is pulled a little towards grey each step (Yosinski's L2 decay).
Deep dream (Mordvintsev et al. 2015) starts from a photo instead of noise and amplifies whatever
the layer already sees in it (the mean square of its activations), over a few octaves (scales).

Everything runs in pixel space [0, 255], where zoo models take their input (preprocessing inside).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import UsageError

DEFAULT_CHANNELS = 8  # channels shown when --neurons names a layer only


@dataclass(frozen=True)
class Regularisers:
    steps: int = 128  # gradient-ascent steps (per octave for deep dream: steps // octaves)
    lr: float = 3.0  # step size in pixel units, applied to the gradient normalised by its std
    jitter: int = 8  # largest random shift, in pixels at 224 px (scaled with the input size)
    tv: float = 0.25  # weight of the total-variation (frequency) penalty, relative to the objective
    blur_every: int = 4  # a 3x3 Gaussian blur every this many steps (0 = never)
    decay: float = 0.01  # pull towards grey per step
    octaves: int = 3  # deep dream: scales, each `octave_scale` times the previous
    octave_scale: float = 1.4
    seed: int = 0


def parse_neurons(spec: str) -> tuple[str, list[int] | None]:
    """"LAYER", "LAYER:3", "LAYER:0,4,9" or "LAYER:0-7" -> (layer name, channels or None)."""
    text = str(spec).strip()
    name, _, channels = text.rpartition(":") if ":" in text else (text, "", "")
    if not name:
        raise UsageError(f"--neurons must be LAYER or LAYER:CHANNELS (e.g. conv5_block2_out:0-7). Received: {spec!r}.")
    if not channels:
        return name, None
    out: list[int] = []
    try:
        for part in channels.split(","):
            first, dash, last = part.strip().partition("-")
            out.extend(range(int(first), int(last) + 1) if dash else [int(first)])
    except ValueError:
        raise UsageError(f"CHANNELS in --neurons must be numbers, lists (0,3,5) or ranges (0-7). "
                         f"Received: {channels!r}.") from None
    if not out or min(out) < 0:
        raise UsageError(f"CHANNELS in --neurons must be channel numbers >= 0. Received: {channels!r}.")
    return name, out


def _channels(layer, channels: list[int] | None) -> list[int]:
    count = int(layer.output.shape[-1])
    if channels is None:
        return list(range(min(DEFAULT_CHANNELS, count)))
    bad = [c for c in channels if c >= count]
    if bad:
        raise UsageError(f"Layer {layer.name!r} has {count} channels (0-{count - 1}). Received: {bad}.")
    return list(channels)


def _activation_fn(model, meta: dict, layer):
    """x (pixels) -> the layer's output: a sub-model when the layer is in the model's own graph
    (the rest of the network is not run), else the whole model with the layer captured."""
    import keras

    from zoo.explaining.layers import capture
    from zoo.inference import external_normalisation, normalise

    norm = external_normalisation(model, meta)
    try:
        sub = keras.Model(model.inputs, layer.output)
    except (ValueError, AttributeError, TypeError):  # inside a nested model: not reachable from the outer inputs
        sub = None

    def run(x):
        if norm is not None:
            x = normalise(x, norm)
        if sub is not None:
            return sub(x, training=False)
        with capture(model, [layer]) as store:
            model(x, training=False)
        return store[layer.name]

    return run


def _blur(x):
    import tensorflow as tf

    k = np.array([1.0, 2.0, 1.0], np.float32)
    k = np.outer(k, k) / 16.0
    channels = int(x.shape[-1])
    kernel = tf.constant(np.repeat(k[:, :, None, None], channels, axis=2))
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
    return tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], "VALID")


def _total_variation(x):
    import tensorflow as tf

    return tf.reduce_sum(tf.abs(x[:, 1:] - x[:, :-1]), axis=[1, 2, 3]) + tf.reduce_sum(
        tf.abs(x[:, :, 1:] - x[:, :, :-1]), axis=[1, 2, 3])


def _ascent_step(activation, objective, reg: Regularisers):
    """A traced step: (x, shift, blur) -> (x after one regularised gradient-ascent step, objective
    per image). Both gradients come from one persistent tape: the objective's and the penalty's,
    each normalised by its std so `lr` and `tv` mean the same for every layer and model."""
    import tensorflow as tf

    def step(x, shift, blur):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            value = objective(tf.cast(activation(tf.roll(x, shift, axis=[1, 2])), tf.float32))
            total = tf.reduce_sum(value)
            penalty = tf.reduce_sum(_total_variation(x))
        grad = tape.gradient(total, x)
        tv_grad = tape.gradient(penalty, x)
        del tape
        scale = tf.math.reduce_std(grad, axis=[1, 2, 3], keepdims=True) + 1e-8
        tv_scale = tf.math.reduce_std(tv_grad, axis=[1, 2, 3], keepdims=True) + 1e-8
        x = x + reg.lr * (grad / scale - reg.tv * tv_grad / tv_scale)
        x = 127.5 + (x - 127.5) * (1.0 - reg.decay)
        x = tf.cond(blur, lambda: _blur(x), lambda: x)
        return tf.clip_by_value(x, 0.0, 255.0), value

    return tf.function(step, reduce_retracing=True)


def visualize_neurons(model: Any, meta: dict, layer: Any, channels: list[int] | None = None, *,
                      reg: Regularisers | None = None) -> tuple[list[np.ndarray], list[int], list[float]]:
    """Images (H, W, C uint8, at the model input size) that maximise each channel's mean activation.

    Returns (images, channels, final mean activations)."""
    import tensorflow as tf

    from zoo.explaining.layers import resolve_layer
    from zoo.inference import input_size

    reg = reg or Regularisers()
    if reg.steps < 1:
        raise UsageError(f"`steps` must be >= 1. Received: steps={reg.steps}.")
    layer = resolve_layer(model, layer)
    channels = _channels(layer, channels)
    height, width, depth = input_size(model, meta)
    chosen = tf.constant(channels, tf.int32)

    def objective(act):  # the mean activation of image k's own channel
        per_channel = tf.reduce_mean(act, axis=[1, 2])  # (K, C)
        return tf.gather(per_channel, chosen, axis=1, batch_dims=1)

    step = _ascent_step(_activation_fn(model, meta, layer), objective, reg)
    rng = np.random.default_rng(reg.seed)
    x = tf.constant(127.5 + 8.0 * rng.standard_normal((len(channels), height, width, depth)), tf.float32)
    jitter = max(1, round(reg.jitter * max(height, width) / 224))
    value = None
    for n in range(reg.steps):
        shift = tf.constant(rng.integers(-jitter, jitter + 1, 2), tf.int32)
        blur = tf.constant(bool(reg.blur_every) and (n + 1) % reg.blur_every == 0 and n < reg.steps - 1)
        x, value = step(x, shift, blur)
    images = [np.clip(np.rint(img), 0, 255).astype(np.uint8) for img in x.numpy()]
    return images, channels, [float(v) for v in value.numpy()]


def neuron_grid(images: list[np.ndarray], captions: list[str], *, min_tile: int = 128):
    """The images side by side (a near-square grid), each captioned, as a PIL image."""
    from PIL import Image, ImageDraw

    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    h, w = images[0].shape[:2]
    factor = max(1, math.ceil(min_tile / max(h, w)))
    th, tw, text_h, gap = h * factor, w * factor, 14, 4
    grid = Image.new("RGB", (cols * (tw + gap) + gap, rows * (th + text_h + gap) + gap), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for i, (image, caption) in enumerate(zip(images, captions)):
        tile = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).convert("RGB")
        tile = tile.resize((tw, th), Image.Resampling.NEAREST)
        x = gap + (i % cols) * (tw + gap)
        y = gap + (i // cols) * (th + text_h + gap)
        grid.paste(tile, (x, y))
        draw.text((x, y + th + 1), caption, fill=(0, 0, 0))
    return grid


def neurons(model: Any, spec: str, *, weights: str | None = None, save_dir: str | os.PathLike = ".",
            reg: Regularisers | None = None) -> dict:
    """`zoo explain --neurons LAYER[:CHANNELS]`: the grid PNG of what each channel responds to.

    Returns {"ok", "method": "neurons", "layer", "channels", "activation", "grid": PATH}."""
    from zoo.data.sources import artefact_path
    from zoo.explaining.layers import resolve_layer
    from zoo.files import save_image
    from zoo.modeldir import resolve_model

    keras_model, meta = resolve_model(model, weights=weights)
    name, channels = parse_neurons(spec)
    layer = resolve_layer(keras_model, name)
    images, channels, values = visualize_neurons(keras_model, meta, layer, channels, reg=reg)
    save_dir = Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    path = artefact_path(save_dir, f"neurons_{layer.name}", suffix=".png")
    save_image(neuron_grid(images, [f"{layer.name} ch {c}" for c in channels]), path)
    return {"ok": True, "method": "neurons", "layer": layer.name, "channels": channels,
            "activation": [round(v, 4) for v in values], "grid": str(path)}


def iter_dream(sources: Any, *, model: Any, layer: Any = None, weights: str | None = None, channels: list[int] | None = None,
               save_dir: str | os.PathLike = ".", reg: Regularisers | None = None, batch_size: int = 8,
               recursive: bool = False, workers: int | None = None, max_pixels: Any = None) -> Iterator[dict]:
    """Deep dream on each source image: {"source", "ok", "method": "dream", "layer", "image": PATH}
    (the dreamed image at the original size), or an error record; the rest go on."""
    import tensorflow as tf

    from zoo.data.sources import artefact_path
    from zoo.explaining.layers import feature_layers, resolve_layer
    from zoo.explaining.render import resample
    from zoo.files import save_image
    from zoo.inference import input_size, prepared_chunks
    from zoo.modeldir import resolve_model

    reg = reg or Regularisers(steps=60)
    keras_model, meta = resolve_model(model, weights=weights)
    height, width, depth = input_size(keras_model, meta)
    if layer is None:  # a layer about two-thirds up: the textures and parts deep dream is known for
        maps = feature_layers(keras_model)
        if not maps:
            raise UsageError("This model has no convolutional feature map to dream with; name one with --layer.")
        layer = maps[(2 * len(maps)) // 3]
    layer = resolve_layer(keras_model, layer)
    chosen = None if channels is None else _channels(layer, channels)

    def objective(act):
        if chosen is not None:
            act = tf.gather(act, chosen, axis=-1)
        return tf.reduce_mean(tf.square(act), axis=[1, 2, 3])

    activation = _activation_fn(keras_model, meta, layer)
    per_octave = max(1, reg.steps // max(1, reg.octaves))
    dream_reg = replace(reg, tv=0.0, decay=0.0, blur_every=0)
    steps: dict[tuple[int, int], Any] = {}

    def at_size(size):
        if size not in steps:
            fn = lambda x: activation(tf.image.resize(x, (height, width)))  # noqa: E731
            steps[size] = _ascent_step(fn, objective, dream_reg)
        return steps[size]

    save_dir = Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(reg.seed)
    chunks = prepared_chunks(sources, _Squash(), {**meta, "input_shape": [height, width, depth]},
                             batch_size=batch_size, recursive=recursive, workers=workers, max_pixels=max_pixels)
    with closing(chunks):
        for chunk in chunks:
            good = [r for r in chunk if r[5] is None]
            dreamed = {}
            if good:
                base = np.stack([r[2] for r in good]).astype(np.float32)
                dreamed = dict(zip([r[0] for r in good], _dream(base, at_size, reg, per_octave, rng)))
            for index, source, _, info, _, error in chunk:
                if error is not None:
                    yield {"source": source, "ok": False, "error": error}
                    continue
                h, w = info["orig_size"]
                image = np.stack([resample(dreamed[index][:, :, c], (h, w)) for c in range(depth)], axis=-1)
                image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
                try:
                    path = artefact_path(save_dir, source, suffix=".dream.png")
                    save_image(image[:, :, 0] if depth == 1 else image, path)
                except Exception as exc:  # a failed write is this input's failure, not the run's
                    yield {"source": source, "ok": False, "error": " ".join(f"could not save: {exc}".split())[:500]}
                    continue
                yield {"source": source, "ok": True, "method": "dream", "layer": layer.name, "image": str(path)}


class _Squash:
    """Deep dream's input preparation: the whole image stretched to the model input, so every
    pixel is dreamed on and the result stretches back to the original size."""

    def prepare(self, image: np.ndarray, meta: dict):
        from zoo.data.images import resize_for_model

        return resize_for_model(image, tuple(meta["input_shape"][:2]), resize="squash")


def _dream(base: np.ndarray, at_size, reg: Regularisers, per_octave: int, rng) -> np.ndarray:
    """Octaves from the coarsest: ascend, then carry the added detail up to the next scale."""
    import tensorflow as tf

    n, height, width, _ = base.shape
    sizes = [(max(8, round(height / reg.octave_scale**k)), max(8, round(width / reg.octave_scale**k)))
             for k in reversed(range(max(1, reg.octaves)))]
    detail = tf.zeros((n, *sizes[0], base.shape[-1]), tf.float32)
    jitter = max(1, round(reg.jitter * max(height, width) / 224))
    for size in sizes:
        original = tf.image.resize(tf.constant(base), size)
        detail = tf.image.resize(detail, size)
        x = tf.clip_by_value(original + detail, 0.0, 255.0)
        step = at_size(size)
        for _ in range(per_octave):
            shift = tf.constant(rng.integers(-jitter, jitter + 1, 2), tf.int32)
            x, _ = step(x, shift, tf.constant(False))
        detail = x - original
    return x.numpy()
