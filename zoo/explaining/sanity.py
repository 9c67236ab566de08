"""The model-randomisation sanity check of Adebayo et al. 2018 (Sanity Checks for Saliency Maps).

An explanation that does not change when the model forgets what it learned explains the input,
not the model. The check re-initialises the top of the network (the classifier head and the last
two convolutional blocks of the base), explains the same images for the same class again, and compares each pair of
maps by Spearman rank correlation. A method passes when the maps have changed: a mean correlation
below the threshold (Adebayo et al. see correlations near 0 for methods that depend on the
weights, and high ones for methods that act like edge detectors).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

DEFAULT_THRESHOLD = 0.5


def top_layers(model) -> list:
    """The layers re-initialised: the classifier head and the base's blocks (by layer names, e.g.
    conv5_block2) from the top down through the second one with a kernel, so the explained feature
    map and the block feeding it both change (a block of only a batch norm does not count). A model
    without a Dense head (detection, or a head inside a nested model) loses its top three blocks
    with kernels, its output convolution being one of them."""
    from zoo.training.freeze import base_blocks, head_layers

    head = [l for l in head_layers(model) if l.weights]
    need = 2 if head else 3
    taken: list = []
    for _, members in reversed(base_blocks(model)):
        taken = members + taken
        need -= any(len(w.shape) >= 2 for l in members for w in l.weights)
        if need <= 0:
            break
    layers = [l for l in taken if l.weights] + head
    return list({id(l): l for l in layers}.values())


def _initializer(layer, variable, seed: int):
    import keras

    short = variable.path.split("/")[-1] if hasattr(variable, "path") else variable.name
    init = getattr(layer, f"{short}_initializer", None)
    if init is None and short == "kernel":
        init = getattr(layer, "depthwise_initializer", None)
    if init is None:
        init = keras.initializers.GlorotUniform() if len(variable.shape) >= 2 else keras.initializers.Zeros()
    config = init.get_config()
    if "seed" in config:
        init = type(init).from_config({**config, "seed": seed})
    return init


@contextmanager
def randomised(model, *, seed: int = 0) -> Iterator[list[str]]:
    """Within the block, `model`'s top layers have fresh random weights (their own initialisers);
    the trained weights are put back on exit, also after an error. Yields the layer names."""
    layers = top_layers(model)
    saved = [(v, np.array(v.numpy())) for layer in layers for v in layer.weights]
    try:
        n = 0
        for layer in layers:
            for variable in layer.weights:
                init = _initializer(layer, variable, seed + n)
                variable.assign(np.asarray(init(variable.shape, dtype=variable.dtype)))
                n += 1
        yield [l.name for l in layers]
    finally:
        for variable, value in saved:
            variable.assign(value)


def rank(values: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 of a flat array, ties given their average rank (as Spearman's rho needs:
    a ReLU'd Grad-CAM map has many equal zeros)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), np.float64)
    ranks[order] = np.arange(len(values))
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.bincount(inverse, weights=ranks) / counts)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman rank correlation of two maps of the same shape; None when one is constant."""
    ra, rb = rank(a), rank(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denominator = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    if denominator == 0.0:
        return None
    return float((ra * rb).sum() / denominator)


def verdict(correlations: list[Any], *, method: str, threshold: float = DEFAULT_THRESHOLD) -> tuple[bool, str]:
    """(passed, one line) over the per-image correlations of one run (None values skipped)."""
    values = [float(c) for c in correlations if c is not None]
    if not values:
        return False, (f"sanity check inconclusive for {method}: no image gave two non-constant maps to compare. "
                       f"Try other images.")
    mean = float(np.mean(values))
    if mean >= threshold:
        return False, (f"sanity check FAILED for {method}: maps barely change when the top layers are re-initialised "
                       f"(mean Spearman {mean:.2f} >= {threshold:.2f} over {len(values)} images), so they do not show "
                       f"what the model learned.")
    return True, (f"sanity check passed for {method}: maps change when the top layers are re-initialised "
                  f"(mean Spearman {mean:.2f} < {threshold:.2f} over {len(values)} images).")
