"""Deterministic synthetic weights for torch state dicts, identical in numpy with or without torch.

scripts/make_torch_fixtures.py fills torchvision models with these weights and records their
outputs; the tests rebuild the same state dict from the recorded names and shapes (no torch),
load it through zoo and compare. Integer hashing (splitmix64) makes the values exact on every
platform and numpy version, so full-size torchvision models need no committed weight files.
"""

from __future__ import annotations

import math

import numpy as np

_MASK = (1 << 64) - 1


def uniform(n: int, seed: int) -> np.ndarray:
    """n float64 values in [-1, 1), a pure function of (index, seed)."""
    offset = np.uint64((seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & _MASK)
    with np.errstate(over="ignore"):
        x = np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + offset
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53) * 2.0 - 1.0


def synth_state_dict(shapes: dict[str, list[int]]) -> dict[str, np.ndarray]:
    """Weights with sane statistics (He-like kernels, BN stats away from 0/1) for every (name, shape)."""
    out = {}
    for i, name in enumerate(sorted(shapes)):
        shape = tuple(shapes[name])
        u = uniform(int(np.prod(shape)) if shape else 1, seed=i + 1).reshape(shape)
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "running_var":
            v = 1.0 + 0.5 * u
        elif leaf == "running_mean":
            v = 0.1 * u
        elif leaf == "bias":
            v = 0.1 * u
        elif leaf == "weight" and len(shape) == 1:  # batch-norm gamma
            v = 1.0 + 0.2 * u
        else:  # conv / linear weight: uniform with variance 1 / fan_in (keeps deep nets near unit scale)
            fan_in = int(np.prod(shape[1:]))
            v = u * math.sqrt(3.0 / fan_in)
        out[name] = v.astype(np.float32)
    return out


def synth_input(shape: tuple[int, ...], seed: int = 12345) -> np.ndarray:
    """A batch of standardised-looking inputs (NCHW for torch)."""
    return (uniform(int(np.prod(shape)), seed).reshape(shape) * 1.7).astype(np.float32)
