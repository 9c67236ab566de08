"""Preprocessing presets of the weights zoo knows (values as in zoo.models.common.PREPROCESSING,
plus the resize policy each source evaluates with). No Keras import: the manifest code uses it."""

from __future__ import annotations

from typing import Any

_IMAGENET_EVAL = {"resize": "crop", "crop_pct": 0.875, "interpolation": "bilinear"}

PREPROCESSING: dict[str, dict[str, Any]] = {
    "torch": {"mode": "torch", "scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
              "channel_order": "rgb", **_IMAGENET_EVAL},
    "caffe": {"mode": "caffe", "scale": 1.0, "mean": [103.939, 116.779, 123.68], "std": [1.0, 1.0, 1.0],
              "channel_order": "bgr", **_IMAGENET_EVAL},
    "tf": {"mode": "tf", "scale": 1 / 127.5, "mean": [1.0, 1.0, 1.0], "std": [1.0, 1.0, 1.0],
           "channel_order": "rgb", **_IMAGENET_EVAL},
    "unit": {"mode": "unit", "scale": 1 / 255, "mean": [0.0], "std": [1.0], "channel_order": "rgb"},
}
