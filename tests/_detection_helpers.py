"""Helpers shared by the detection tests (tests/ is on sys.path through the rootdir conftest)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def shapes_module():
    """scripts/make_shapes_detection.py, the seeded synthetic VOC generator, loaded as a module."""
    spec = importlib.util.spec_from_file_location("make_shapes_detection", ROOT / "scripts" / "make_shapes_detection.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def raw_from_targets(targets: np.ndarray, anchors: np.ndarray, num_classes: int, confidence: float = 20.0):
    """The raw head output whose decoding is exactly `targets` (inverse of the YOLOv2 parametrisation)."""
    grid = targets.shape[0]
    a = len(anchors)
    raw = np.zeros((grid, grid, a, 5 + num_classes), dtype=np.float64)
    raw[..., 4] = -confidence
    for row, col, k in zip(*np.nonzero(targets[..., 4])):
        cx, cy, w, h, _, cls = targets[row, col, k]
        off = np.array([cx * grid - col, cy * grid - row])
        raw[row, col, k, 0:2] = np.log(off / (1 - off))
        raw[row, col, k, 2:4] = np.log(np.array([w, h]) / anchors[k])
        raw[row, col, k, 4] = confidence
        raw[row, col, k, 5 + int(cls)] = confidence
    return raw.reshape(grid, grid, a * (5 + num_classes)).astype(np.float32)
