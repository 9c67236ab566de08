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
    import keras
    from keras import tree
    from keras.src.models.functional import Functional

    nodes = [node for depth in sorted(model._nodes_by_depth, reverse=True) for node in model._nodes_by_depth[depth]]
    consumers: dict[int, list] = {}
    calls: dict[int, int] = {}  # id(layer) -> number of nodes calling it in this model
    for node in nodes:
        if node.is_input or not node.operation:
            continue
        calls[id(node.operation)] = calls.get(id(node.operation), 0) + 1
        for t in node.input_tensors:
            consumers.setdefault(id(t), []).append(node)
    outputs = set(id(t) for t in model.outputs)

    def sole_consumer(tensor):
        users = consumers.get(id(tensor), [])
        if id(tensor) in outputs or len(users) != 1 or calls[id(users[0].operation)] != 1:
            return None
        return users[0]

    # Pair each foldable conv node with the BN node that alone consumes its output.
    bn_of_conv: dict[int, Any] = {}
    for node in nodes:
        op = node.operation
        if node.is_input or not op or _kind(op) not in _FOLDABLE or calls[id(op)] != 1 or len(node.outputs) != 1:
            continue
        user = sole_consumer(node.outputs[0])
        if user is not None and _kind(user.operation) == "BatchNormalization" and _bn_matches(user.operation, op, len(node.outputs[0].shape)):
            bn_of_conv[id(node)] = user
    folded_bn = {id(bn) for bn in bn_of_conv.values()}

    # Pair an affine preprocessing node with the valid-padding conv that alone consumes it.
    conv_of_pre: dict[int, Any] = {}
    for node in nodes:
        op = node.operation
        if node.is_input or not op or _kind(op) not in _AFFINE_PREPROCESSING or len(node.outputs) != 1:
            continue
        user = sole_consumer(node.outputs[0])
        if user is None or not _fusable_first_conv(user.operation):
            continue
        affine = _probe_affine(op, node.input_tensors[0], node.outputs[0])
        if affine is not None:
            conv_of_pre[id(node)] = (user, affine)
    pre_of_conv = {id(user): (pre, affine) for pre, (user, affine) in
                   ((n, conv_of_pre[id(n)]) for n in nodes if id(n) in conv_of_pre)}

    new_inputs = []
    values: dict[int, Any] = {}
    for t in model.inputs:
        layer = t._keras_history.operation
        x = keras.Input(batch_shape=t.shape, dtype=t.dtype, name=layer.name)
        new_inputs.append(x)
        values[id(t)] = x

    copies: dict[int, Any] = {}  # id(original layer) -> its copy, so shared layers stay shared
    report = {"folded_bn": 0, "kept_bn": 0, "removed_dropout": 0, "fused_preprocessing": 0}
    for node in nodes:
        op = node.operation
        if node.is_input or not op:
            continue
        kind = _kind(op)
        if id(node) in conv_of_pre:  # its conv reads the raw input instead
            values[id(node.outputs[0])] = None
            continue
        if id(node) in folded_bn:
            continue  # its output was set when the conv before it was rebuilt
        if kind in _INFERENCE_IDENTITY:
            values[id(node.outputs[0])] = values[id(node.input_tensors[0])]
            report["removed_dropout"] += 1
            continue
        if id(node) in bn_of_conv or id(node) in pre_of_conv:
            bn = bn_of_conv.get(id(node))
            pre, affine = pre_of_conv.get(id(node), (None, None))
            x = values[id((pre or node).input_tensors[0])]
            layer, weights = _folded_conv(op, bn.operation if bn else None, affine)
            y = layer(x)
            _finish_copy(layer, op, weights)
            values[id((bn or node).outputs[0])] = y
            report["folded_bn"] += bn is not None
            report["fused_preprocessing"] += pre is not None
            continue
        if kind == "BatchNormalization":
            report["kept_bn"] += 1
        layer = copies.get(id(op))
        new_layer = layer is None
        nested = isinstance(op, Functional) or (isinstance(op, keras.Sequential)
                                                 and getattr(op, "_functional", None) is not None)
        if new_layer:
            if nested:  # a backbone inside a model: optimised on its own
                layer, sub = _rebuild(_as_functional(op), name=op.name)
                for key in report:
                    report[key] += sub[key]
            else:
                layer = _copy_layer(op)
            copies[id(op)] = layer
        args, kwargs = node.arguments.fill_in(values)
        out = layer(*args, **kwargs)
        if new_layer and not nested:
            _finish_copy(layer, op, op.weights)
        for ref, val in zip(node.outputs, tree.flatten(out)):
            values[id(ref)] = val

    inputs = tree.pack_sequence_as(model._inputs_struct, new_inputs)
    outs = tree.pack_sequence_as(model._outputs_struct, [values[id(t)] for t in model.outputs])
    return Functional(inputs=inputs, outputs=outs, name=name or model.name), report


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
