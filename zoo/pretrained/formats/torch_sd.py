"""Torch state dicts as numpy: `.safetensors` (no torch needed) and `.pth` (torch, weights_only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo.errors import WeightsError


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise WeightsError(f"Cannot read safetensors file {path}: {exc}. Download it again.") from None
    return {k: np.asarray(v, dtype=np.float32) if np.issubdtype(v.dtype, np.floating) else np.asarray(v)
            for k, v in tensors.items()}


def read_torch(path: str | Path) -> dict[str, np.ndarray]:
    """A torch.save'd state dict, via torch.load(weights_only=True): tensors only, never code."""
    try:
        import torch
    except ImportError:
        raise WeightsError(
            f"{path} is a PyTorch pickle (.pth); reading it needs torch (`pip install torch`). Or convert it "
            f"once to .safetensors (safetensors.torch.save_file(torch.load(p, weights_only=True), 'w.safetensors'))."
        ) from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"torch.load(weights_only=True) refused {path}: {exc}") from None
    for key in ("state_dict", "model", "model_state_dict"):  # common training-checkpoint wrappers
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise WeightsError(f"{path} does not hold a state dict (found {type(obj).__name__}).")
    out = {}
    for k, v in obj.items():
        if hasattr(v, "detach"):
            v = v.detach().cpu()
            out[k] = v.float().numpy() if v.is_floating_point() else v.numpy()
    return out


def read_state_dict(path: str | Path, fmt: str) -> dict[str, np.ndarray]:
    sd = read_safetensors(path) if fmt == "safetensors" else read_torch(path)
    # DataParallel / timm EMA wrappers prefix every key.
    for prefix in ("module.", "model."):
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd
