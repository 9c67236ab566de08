"""torchvision / timm state dicts -> tensors per zoo layer, in Keras layout.

Conversions (PyTorch is NCHW, Keras NHWC):
- Conv2d weight (out, in, kh, kw) -> Keras kernel (kh, kw, in, out);
- Linear weight (out, in) -> Keras kernel (in, out); the first Linear after a flatten also gets
  its inputs reordered from PyTorch's (C, H, W) flattening to Keras's (H, W, C);
- BatchNorm weight, bias, running_mean, running_var -> gamma, beta, moving_mean, moving_variance
  (num_batches_tracked is dropped; the epsilon is an architecture option the weights impose).
Names: each family declares the mapper from torch module paths to its layer names (and any
key fix-ups) in its PretrainedSpec (zoo.models.<family>.PRETRAINED), which arrives here with the
weights; this module knows no family.
"""

from __future__ import annotations

import numpy as np

from zoo.errors import WeightsError

_BN_PARAMS = ("weight", "bias", "running_mean", "running_var")


def _flatten_source(model, layer):
    """The Flatten layer feeding `layer` (through Dropout layers), or None."""
    node = layer._inbound_nodes[0] if layer._inbound_nodes else None
    while node is not None and node.input_tensors:
        prev = node.input_tensors[0]._keras_history.operation
        name = type(prev).__name__
        if name == "Flatten":
            return prev
        if name != "Dropout":
            return None
        node = prev._inbound_nodes[0] if prev._inbound_nodes else None
    return None


def _convert(layer, module: str, sd: dict[str, np.ndarray], model) -> list[np.ndarray]:
    kind = type(layer).__name__
    if kind == "BatchNormalization":
        return [sd[f"{module}.{p}"] for p in _BN_PARAMS]
    weight = sd[f"{module}.weight"]
    out = []
    if kind == "Conv2D":
        if weight.ndim != 4:
            raise WeightsError(f"Torch tensor {module}.weight has shape {weight.shape}; layer {layer.name!r} "
                               f"is a convolution and needs (out, in, kh, kw).")
        out.append(np.transpose(weight, (2, 3, 1, 0)))
    elif kind == "Dense":
        if weight.ndim == 4 and weight.shape[2:] == (1, 1):  # a 1x1 conv used as a classifier
            weight = weight[:, :, 0, 0]
        flatten = _flatten_source(model, layer)
        if flatten is not None:
            h, w, c = flatten.input.shape[1:]
            if h * w > 1 and weight.shape[1] == h * w * c:
                weight = weight.reshape(weight.shape[0], c, h, w).transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)
        out.append(weight.T)
    else:
        raise WeightsError(f"zoo cannot convert torch weights into layer {layer.name!r} of type {kind}.")
    if f"{module}.bias" in sd:
        out.append(sd[f"{module}.bias"])
    return out


def to_layers(sd: dict[str, np.ndarray], model, *, arch: str, pretrained) -> tuple[dict[str, list[np.ndarray]], list[str]]:
    """{zoo layer name: Keras-layout arrays} from a torch state dict, and the torch modules left unused.

    `pretrained` is the family's PretrainedSpec: its torch_mapper names the layers, its torch_fixups
    rename old keys first; `arch` (the registry name) is for messages.
    """
    if pretrained is None or pretrained.torch_mapper is None:
        raise WeightsError(f"zoo has no torch name mapping for {arch}, so torchvision / timm weights cannot load "
                           f"into it. Use weights saved by zoo or Keras, or a model whose family maps torch names "
                           f"(`zoo weights list` shows the torch weights zoo knows).")
    if pretrained.torch_fixups is not None:
        sd = pretrained.torch_fixups(sd)
    modules = sorted({k.rsplit(".", 1)[0] for k in sd if not k.endswith("num_batches_tracked")})
    layer_by_name = {layer.name: layer for layer in model.layers}
    names = pretrained.torch_mapper(modules, sd, model)
    out: dict[str, list[np.ndarray]] = {}
    unused = []
    for module in modules:
        name = names.get(module)
        layer = layer_by_name.get(name) if name else None
        if layer is None:
            unused.append(module)
            continue
        out[name] = [np.ascontiguousarray(a, dtype=np.float32) for a in _convert(layer, module, sd, model)]
    return out, unused
