"""torchvision / timm state dicts -> tensors per zoo layer, in Keras layout.

Conversions (PyTorch is NCHW, Keras NHWC):
- Conv2d weight (out, in, kh, kw) -> Keras kernel (kh, kw, in, out);
- Linear weight (out, in) -> Keras kernel (in, out); the first Linear after a flatten also gets
  its inputs reordered from PyTorch's (C, H, W) flattening to Keras's (H, W, C);
- BatchNorm weight, bias, running_mean, running_var -> gamma, beta, moving_mean, moving_variance
  (num_batches_tracked is dropped; the epsilon is an architecture option the weights impose).
Names: one small mapper per family turns a torch module path into a zoo layer name.
"""

from __future__ import annotations

import re
from typing import Callable

import numpy as np

from zoo.errors import WeightsError

_BN_PARAMS = ("weight", "bias", "running_mean", "running_var")


def _resnet(module: str, layers: set[str]) -> str | None:
    if module in ("conv1", "bn1"):
        return "conv1_conv" if module == "conv1" else "conv1_bn"
    if module == "fc":
        return "predictions"
    m = re.fullmatch(r"layer(\d)\.(\d+)\.(conv|bn)(\d)", module)
    if m:
        stage, block, kind, k = m.groups()
        return f"conv{int(stage) + 1}_block{int(block) + 1}_{k}_{kind}"
    m = re.fullmatch(r"layer(\d)\.(\d+)\.downsample\.([01])", module)
    if m:
        stage, block, idx = m.groups()
        return f"conv{int(stage) + 1}_block{int(block) + 1}_0_{'conv' if idx == '0' else 'bn'}"
    return None


def _densenet(module: str, layers: set[str]) -> str | None:
    fixed = {"features.conv0": "conv1_conv", "features.norm0": "conv1_bn", "features.norm5": "bn",
             "classifier": "predictions"}
    if module in fixed:
        return fixed[module]
    m = re.fullmatch(r"features\.denseblock(\d)\.denselayer(\d+)\.(norm|conv)([12])", module)
    if m:
        block, layer, kind, k = m.groups()
        name = f"conv{int(block) + 1}_block{int(layer)}"
        return f"{name}_{int(k) - 1}_bn" if kind == "norm" else f"{name}_{k}_conv"
    m = re.fullmatch(r"features\.transition(\d)\.(norm|conv)", module)
    if m:
        block, kind = m.groups()
        return f"pool{int(block) + 1}_{'bn' if kind == 'norm' else 'conv'}"
    return None


def _googlenet(module: str, layers: set[str]) -> str | None:
    # zoo's GoogLeNet names layers by torchvision's module paths ("." -> "_"); the classifier is "predictions".
    return "predictions" if module == "fc" else module.replace(".", "_")


_MAPPERS: dict[str, Callable[[str, set[str]], str | None]] = {
    "resnet": _resnet, "densenet": _densenet, "googlenet": _googlenet,
}


def _sequential_names(modules: list[str], sd: dict[str, np.ndarray], model) -> dict[str, str]:
    """VGG / AlexNet: torchvision's `features.N` and `classifier.N` are numbered Sequentials, so
    their convolutions, batch norms and linears map in order onto the model's layers of each kind."""
    by_kind: dict[str, list[str]] = {"Conv2D": [], "BatchNormalization": [], "Dense": []}
    for layer in model.layers:
        if type(layer).__name__ in by_kind and layer.weights:
            by_kind[type(layer).__name__].append(layer.name)

    def index(m: str) -> tuple[int, int]:
        head, num = m.split(".")
        return (0 if head == "features" else 1, int(num))

    seq = sorted((m for m in modules if re.fullmatch(r"(features|classifier)\.\d+", m)), key=index)
    counters = {kind: 0 for kind in by_kind}
    names = {}
    for m in seq:
        if f"{m}.running_mean" in sd:
            kind = "BatchNormalization"
        elif sd[f"{m}.weight"].ndim == 4:
            kind = "Conv2D"
        else:
            kind = "Dense"
        i = counters[kind]
        counters[kind] += 1
        if i < len(by_kind[kind]):
            names[m] = by_kind[kind][i]
    return names


def _normalise_keys(sd: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    # torchvision's original DenseNet checkpoints say "norm.1" where the modules say "norm1".
    pattern = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")
    return {pattern.sub(r"\1\2", k): v for k, v in sd.items()}


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


def to_layers(sd: dict[str, np.ndarray], model, *, arch: str) -> tuple[dict[str, list[np.ndarray]], list[str]]:
    """{zoo layer name: Keras-layout arrays} from a torch state dict, and the torch modules left unused."""
    from zoo.registry import get_spec

    family = get_spec(arch).family
    sd = _normalise_keys(sd)
    modules = sorted({k.rsplit(".", 1)[0] for k in sd if not k.endswith("num_batches_tracked")})
    layer_by_name = {layer.name: layer for layer in model.layers}
    if family in ("vgg", "alexnet"):
        names = _sequential_names(modules, sd, model)
    elif family in _MAPPERS:
        names = {m: n for m in modules if (n := _MAPPERS[family](m, set(layer_by_name))) is not None}
    else:
        raise WeightsError(f"zoo has no torch name mapping for {arch} ({family}); torch weights load into "
                           f"alexnet, vgg*, googlenet, resnet* and densenet*.")
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
