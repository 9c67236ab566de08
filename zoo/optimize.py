"""Inference copies of zoo models: the same outputs, fewer and cheaper operations.

`inference_model(model)` walks any functional Keras model node by node and rebuilds it with
copies of its layers, changing three things:

* a BatchNormalization whose only input is a convolution used nowhere else is folded into that
  convolution (kernel scaled per output channel, bias shifted), so the BN's two element-wise
  passes over every activation disappear and TensorFlow's remapper fuses conv+bias+relu.
  A BN after a Dense layer, after a concatenation (DenseNet's pre-activation BN) or after
  anything else is kept as it is;
* dropout-like layers (Dropout, SpatialDropout, GaussianNoise/Dropout, AlphaDropout,
  ActivityRegularization) are removed: they are the identity at inference;
* an affine per-pixel preprocessing layer (zoo's Preprocess, keras Rescaling / Normalization)
  whose only consumer is a convolution with padding="valid" is fused into that convolution's
  kernel and bias. With "same" padding or a ZeroPadding layer in between the fusion would not
  be exact (zeros padded around raw pixels are not zeros after normalisation), so the layer is
  kept there: it costs one element-wise pass over the input image, well under 1% of a forward pass.

The affine map of a preprocessing layer is measured by probing the layer (f(0) and f(e_i)) and
verified on random pixels, so channel flips and any scale/mean/std are handled without knowing
the layer's config; a layer that turns out not to be affine is simply kept.
"""

from __future__ import annotations

from typing import Any

from zoo.errors import UsageError

# Layers that are the identity at inference time.
_INFERENCE_IDENTITY = {
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
    "GaussianDropout", "GaussianNoise", "AlphaDropout", "ActivityRegularization",
}
_PLAIN_CONVS = {"Conv1D", "Conv2D", "Conv3D"}
_FOLDABLE = _PLAIN_CONVS | {
    "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
    "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
}
_AFFINE_PREPROCESSING = {"Preprocess", "Rescaling", "Normalization"}


def inference_model(model):
    """An inference copy of `model`: BN folded into convolutions, dropout removed, preprocessing
    fused where exact. Outputs equal the original's within float32 rounding (tested to 1e-4).

    Args:
        model: a functional (or built Sequential) keras.Model, e.g. from `zoo.build`.

    Returns:
        A new keras.Model with copied weights and the same zoo metadata (`zoo.modeldir.get_meta`);
        `optimize_report(model)` tells what was changed.
    """
    from zoo.modeldir import attach_meta, get_meta

    new, report = _rebuild(_as_functional(model))
    attach_meta(new, get_meta(model))
    object.__setattr__(new, "_zoo_optimize_report", report)
    return new


def optimize_report(model) -> dict[str, int]:
    """What `inference_model` did: folded_bn, kept_bn, removed_dropout, fused_preprocessing."""
    return dict(getattr(model, "_zoo_optimize_report", None) or {})


def _as_functional(model):
    import keras
    from keras.src.models.functional import Functional

    if isinstance(model, Functional):
        return model
    if isinstance(model, keras.Sequential):
        if getattr(model, "_functional", None) is None:
            raise UsageError("inference_model needs a built Sequential model: call it on data or give it an "
                             "Input first.")
        return model._functional
    raise UsageError(f"inference_model works on functional Keras models (zoo.build, keras.applications). "
                     f"Received a {type(model).__name__}; rebuild it with the functional API.")


def _kind(layer) -> str:
    return type(layer).__name__


def _rebuild(model, name: str | None = None):
    """(inference copy of the functional `model`, report): find what folds, then copy node by node."""
    graph = _Graph(model)
    bn_of_conv = _bn_after_convs(graph)
    conv_of_pre = _preprocessing_before_convs(graph)
    return _Copier(model, graph, bn_of_conv, conv_of_pre).run(name or model.name)


class _Graph:
    """The nodes of a functional model in call order, and who consumes each tensor."""

    def __init__(self, model):
        self.nodes = [node for depth in sorted(model._nodes_by_depth, reverse=True)
                      for node in model._nodes_by_depth[depth]]
        self.consumers: dict[int, list] = {}
        self.calls: dict[int, int] = {}  # id(layer) -> number of nodes calling it in this model
        for node in self.layer_nodes():
            self.calls[id(node.operation)] = self.calls.get(id(node.operation), 0) + 1
            for t in node.input_tensors:
                self.consumers.setdefault(id(t), []).append(node)
        self.outputs = {id(t) for t in model.outputs}

    def layer_nodes(self):
        return [node for node in self.nodes if not node.is_input and node.operation]

    def sole_consumer(self, tensor):
        """The one node reading `tensor`, if its layer runs only there and `tensor` is no model output."""
        users = self.consumers.get(id(tensor), [])
        if id(tensor) in self.outputs or len(users) != 1 or self.calls[id(users[0].operation)] != 1:
            return None
        return users[0]


def _bn_after_convs(graph: _Graph) -> dict[int, Any]:
    """id(foldable conv node) -> the BatchNormalization node that alone consumes its output."""
    pairs = {}
    for node in graph.layer_nodes():
        op = node.operation
        if _kind(op) not in _FOLDABLE or graph.calls[id(op)] != 1 or len(node.outputs) != 1:
            continue
        user = graph.sole_consumer(node.outputs[0])
        if (user is not None and _kind(user.operation) == "BatchNormalization"
                and _bn_matches(user.operation, op, len(node.outputs[0].shape))):
            pairs[id(node)] = user
    return pairs


def _preprocessing_before_convs(graph: _Graph) -> dict[int, tuple]:
    """id(affine preprocessing node) -> (the valid-padding conv node that alone consumes it, its affine map)."""
    pairs = {}
    for node in graph.layer_nodes():
        op = node.operation
        if _kind(op) not in _AFFINE_PREPROCESSING or len(node.outputs) != 1:
            continue
        user = graph.sole_consumer(node.outputs[0])
        if user is None or not _fusable_first_conv(user.operation):
            continue
        affine = _probe_affine(op, node.input_tensors[0], node.outputs[0])
        if affine is not None:
            pairs[id(node)] = (user, affine)
    return pairs


class _Copier:
    """Calls copies of the layers on new inputs, node by node, folding what the pairs say."""

    def __init__(self, model, graph: _Graph, bn_of_conv: dict, conv_of_pre: dict):
        self.model, self.graph = model, graph
        self.bn_of_conv, self.conv_of_pre = bn_of_conv, conv_of_pre
        self.folded_bn = {id(bn) for bn in bn_of_conv.values()}
        self.pre_of_conv = {id(user): (pre, affine) for pre in graph.nodes if id(pre) in conv_of_pre
                            for user, affine in [conv_of_pre[id(pre)]]}
        self.values: dict[int, Any] = {}  # id(original tensor) -> its value in the copy
        self.copies: dict[int, Any] = {}  # id(original layer) -> its copy, so shared layers stay shared
        self.report = {"folded_bn": 0, "kept_bn": 0, "removed_dropout": 0, "fused_preprocessing": 0}

    def run(self, name: str):
        import keras
        from keras import tree
        from keras.src.models.functional import Functional

        new_inputs = []
        for t in self.model.inputs:
            x = keras.Input(batch_shape=t.shape, dtype=t.dtype, name=t._keras_history.operation.name)
            new_inputs.append(x)
            self.values[id(t)] = x
        for node in self.graph.layer_nodes():
            self._node(node)
        inputs = tree.pack_sequence_as(self.model._inputs_struct, new_inputs)
        outs = tree.pack_sequence_as(self.model._outputs_struct, [self.values[id(t)] for t in self.model.outputs])
        return Functional(inputs=inputs, outputs=outs, name=name), self.report

    def _node(self, node) -> None:
        kind = _kind(node.operation)
        if id(node) in self.conv_of_pre:  # its conv reads the raw input instead
            self.values[id(node.outputs[0])] = None
        elif id(node) in self.folded_bn:
            pass  # its output was set when the conv before it was rebuilt
        elif kind in _INFERENCE_IDENTITY:
            self.values[id(node.outputs[0])] = self.values[id(node.input_tensors[0])]
            self.report["removed_dropout"] += 1
        elif id(node) in self.bn_of_conv or id(node) in self.pre_of_conv:
            self._folded(node)
        else:
            self.report["kept_bn"] += kind == "BatchNormalization"
            self._copied(node)

    def _folded(self, node) -> None:
        """A conv with the preprocessing before it and / or the BN after it folded in."""
        bn = self.bn_of_conv.get(id(node))
        pre, affine = self.pre_of_conv.get(id(node), (None, None))
        x = self.values[id((pre or node).input_tensors[0])]
        layer, weights = _folded_conv(node.operation, bn.operation if bn else None, affine)
        y = layer(x)
        _finish_copy(layer, node.operation, weights)
        self.values[id((bn or node).outputs[0])] = y
        self.report["folded_bn"] += bn is not None
        self.report["fused_preprocessing"] += pre is not None

    def _copied(self, node) -> None:
        """Any other layer: copied once (a nested model is optimised on its own) and called."""
        import keras
        from keras import tree
        from keras.src.models.functional import Functional

        op = node.operation
        layer = self.copies.get(id(op))
        new_layer = layer is None
        nested = isinstance(op, Functional) or (isinstance(op, keras.Sequential)
                                                 and getattr(op, "_functional", None) is not None)
        if new_layer:
            if nested:  # a backbone inside a model
                layer, sub = _rebuild(_as_functional(op), name=op.name)
                for key in self.report:
                    self.report[key] += sub[key]
            else:
                layer = _copy_layer(op)
            self.copies[id(op)] = layer
        args, kwargs = node.arguments.fill_in(self.values)
        out = layer(*args, **kwargs)
        if new_layer and not nested:
            _finish_copy(layer, op, op.weights)
        for ref, val in zip(node.outputs, tree.flatten(out)):
            self.values[id(ref)] = val


def _copy_layer(layer, **changes):
    """A copy of `layer` from its config. Its weights start as zeros (random initialisation of
    large Dense kernels takes seconds and is overwritten anyway); the copy keeps the original
    initializers in its config."""
    try:
        config = {**layer.get_config(), **changes}
        keys = [k for k in config if k.endswith("_initializer") and config[k] is not None]
        new = type(layer).from_config({**config, **{k: "zeros" for k in keys}})
    except (NotImplementedError, TypeError, ValueError):
        return layer  # a layer without a usable config is shared rather than copied
    return new


def _finish_copy(new, old, weights) -> None:
    """Once `new` is built: load `weights` and give it back the initializers of `old`."""
    if new is old:
        return
    if len(new.weights) != len(weights):
        raise ValueError(f"cannot copy layer {old.name!r}: {len(weights)} weights for {len(new.weights)} variables")
    for variable, value in zip(new.weights, weights):
        # variable to variable: one copy inside TensorFlow instead of three through numpy
        variable.assign(value.value if hasattr(value, "value") else value)
    for key in new.get_config():
        if key.endswith("_initializer") and hasattr(old, key):
            setattr(new, key, getattr(old, key))


def _channel_axis(layer) -> int:
    return 1 if getattr(layer, "data_format", "channels_last") == "channels_first" else -1


def _bn_matches(bn, conv, rank: int) -> bool:
    """True when `bn` normalises the conv's output channels and the conv has no activation."""
    if getattr(conv, "lora_enabled", False) or getattr(conv, "quantization_mode", None):
        return False
    activation = getattr(conv.activation, "__name__", str(conv.activation))
    if activation not in ("linear", "None"):
        return False
    axes = bn.axis if isinstance(bn.axis, (list, tuple)) else [bn.axis]
    if len(axes) != 1:
        return False
    axis = axes[0] % rank
    return axis == _channel_axis(conv) % rank


def _fusable_first_conv(layer) -> bool:
    return (_kind(layer) in _PLAIN_CONVS and layer.padding == "valid" and layer.groups == 1
            and _channel_axis(layer) == -1 and not getattr(layer, "lora_enabled", False)
            and not getattr(layer, "quantization_mode", None))


def _probe_affine(layer, x_ref, y_ref):
    """(M, b) with layer(x)[..., j] == sum_i M[j, i] x[..., i] + b[j], or None if not so."""
    import numpy as np
    from keras import ops

    if not str(x_ref.dtype).startswith("float") or len(x_ref.shape) < 3 or x_ref.shape[-1] != y_ref.shape[-1]:
        return None
    channels = x_ref.shape[-1]
    spatial = [d if d is not None else 8 for d in x_ref.shape[1:-1]]
    try:
        probe = np.zeros([channels + 1, *[1] * len(spatial), channels], "float32")
        for i in range(channels):
            probe[i + 1, ..., i] = 1.0
        out = ops.convert_to_numpy(layer(probe, training=False)).astype("float64")
        b = out[0].reshape(-1, channels)[0]
        m = (out[1:].reshape(channels, -1, channels)[:, 0, :] - b).T  # m[j, i]
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 255, size=[2, *spatial, channels]).astype("float32")
        y = ops.convert_to_numpy(layer(x, training=False)).astype("float64")
    except Exception:  # a layer we cannot probe is kept as it is
        return None
    expect = x.astype("float64") @ m.T + b
    if not np.allclose(y, expect, rtol=1e-5, atol=1e-5 * (1 + np.abs(expect).max())):
        return None
    return m, b


def _folded_conv(conv, bn, affine):
    """A copy of `conv` with a bias, the input affine map and/or the following BN folded in."""
    import numpy as np

    layer = _copy_layer(conv, use_bias=True)
    params = {w.path.split("/")[-1]: np.asarray(w.numpy(), "float64") for w in conv.weights}
    kind = _kind(conv)
    separable = kind.startswith("Separable")
    key = "pointwise_kernel" if separable else "kernel"
    kernel = params[key]
    out_channels = _out_channels(conv, kernel)
    bias = params.get("bias", np.zeros(out_channels))

    if affine is not None:  # conv(M x + b) = conv'(x): only plain convs with valid padding get here
        m, shift = affine
        bias = bias + (kernel * shift[:, None]).sum(axis=tuple(range(kernel.ndim - 1)))
        kernel = np.einsum("...jo,ji->...io", kernel, m)
    if bn is not None:
        gamma = np.asarray(bn.gamma.numpy(), "float64") if bn.scale else 1.0
        beta = np.asarray(bn.beta.numpy(), "float64") if bn.center else 0.0
        mean = np.asarray(bn.moving_mean.numpy(), "float64")
        var = np.asarray(bn.moving_variance.numpy(), "float64")
        scale = gamma / np.sqrt(var + bn.epsilon)
        kernel = _scale_out(conv, kernel, scale * np.ones(out_channels))
        bias = (bias - mean) * scale + beta
    params[key] = kernel
    params["bias"] = bias
    # The order in which the layer creates its weights: kernel(s), then bias.
    order = ["depthwise_kernel", "pointwise_kernel", "bias"] if separable else ["kernel", "bias"]
    return layer, [params[n].astype("float32") for n in order]


def _out_channels(conv, kernel) -> int:
    kind = _kind(conv)
    if kind.startswith("Depthwise"):
        return kernel.shape[-2] * kernel.shape[-1]
    if kind.endswith("Transpose"):
        return kernel.shape[-2]
    return kernel.shape[-1]


def _scale_out(conv, kernel, scale):
    kind = _kind(conv)
    if kind.startswith("Depthwise"):  # (..., in, multiplier): output channel = i * multiplier + m
        return kernel * scale.reshape(kernel.shape[-2], kernel.shape[-1])
    if kind.endswith("Transpose"):  # (..., out, in)
        return kernel * scale[:, None]
    return kernel * scale
