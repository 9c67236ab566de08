"""Preprocessing presets of the weights zoo knows: the modes of zoo.preprocessing.PREPROCESSING
plus the resize policy ImageNet weights are evaluated with. No Keras import: the manifest code uses it."""

from __future__ import annotations

from typing import Any

from zoo.preprocessing import PREPROCESSING as _TABLE

_IMAGENET_EVAL = {"resize": "crop", "crop_pct": 0.875, "interpolation": "bilinear"}

PREPROCESSING: dict[str, dict[str, Any]] = {
    mode: {**values, **(_IMAGENET_EVAL if mode != "unit" else {})} for mode, values in _TABLE.items()
}
