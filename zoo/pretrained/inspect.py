"""What a weights file says about itself: classes of its head, options it needs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

# torch state-dict keys of classifier biases, most specific first (torchvision, timm).
_TORCH_HEADS = ("fc.bias", "head.fc.bias", "head.bias", "classifier.bias", "last_linear.bias")


def torch_head_key(keys) -> str | None:
    keys = set(keys)
    for key in _TORCH_HEADS:
        if key in keys:
            return key
    numbered = [k for k in keys if re.fullmatch(r"classifier\.\d+\.bias", k)]
    return max(numbered, key=lambda k: int(k.split(".")[1])) if numbered else None


def _keras3_dense_keys(f) -> list[str]:
    keys = [k for k in f["layers"] if re.fullmatch(r"dense(_\d+)?", k)]
    return sorted(keys, key=lambda k: int(k.split("_")[1]) if "_" in k else 0)


def head_classes(path: Path, fmt: str) -> int | None:
    """Output units of the classifier in the file, or None when the file has no head."""
    if fmt == "keras_legacy_h5":
        from zoo.pretrained.formats.keras_h5 import open_h5

        with open_h5(path) as f:
            root = f["model_weights"] if "model_weights" in f else f
            names = [n.decode() if isinstance(n, bytes) else n for n in root.attrs["layer_names"]]
            if "predictions" not in names:
                return None
            group = root["predictions"]
            weight_names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
            return int(group[weight_names[0]].shape[-1]) if weight_names else None
    if fmt == "keras":
        from zoo.pretrained.formats.keras_h5 import open_h5

        with open_h5(path) as f:
            dense = _keras3_dense_keys(f)
            return int(f["layers"][dense[-1]]["vars"]["0"].shape[-1]) if dense else None
    if fmt == "safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            key = torch_head_key(f.keys())
            return int(f.get_slice(key).get_shape()[0]) if key else None
    from zoo.pretrained.formats.torch_sd import read_torch

    sd = read_torch(path)
    key = torch_head_key(sd)
    return int(sd[key].shape[0]) if key else None


def keras3_tensor_shapes(path: Path) -> dict[str, list[tuple[int, ...]]]:
    """{Keras layer key: shapes of its tensors} of a zoo .weights.h5, for a family's `recognise`."""
    from zoo.pretrained.formats.keras_h5 import open_h5

    with open_h5(path) as f:
        layers = f["layers"] if "layers" in f else {}
        out = {}
        for key in layers:
            tensors = layers[key].get("vars", {})
            out[key] = [tuple(tensors[i].shape) for i in sorted(tensors, key=int)]
        return out


def implied_options(pretrained, path: Path, fmt: str) -> dict[str, Any]:
    """Options a zoo .weights.h5 needs, recognised by the family's PretrainedSpec from its tensors."""
    if fmt != "keras" or pretrained is None or pretrained.recognise is None:
        return {}
    return dict(pretrained.recognise(keras3_tensor_shapes(path)))
