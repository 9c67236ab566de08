"""The pointing game (Zhang et al. 2016, Top-down Neural Attention by Excitation Backprop).

A map "hits" when its maximum lies inside the box of the explained object (optionally within a
tolerance of `tolerance` pixels, the paper's 15); the score is the fraction of hits. The chance
level is what a point drawn uniformly over the image would score: the mean fraction of the image
the boxes cover. Boxes are (x_min, y_min, x_max, y_max) in pixels, x_max / y_max exclusive.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def hit(point: Sequence[float], box: Sequence[float], *, tolerance: float = 0.0) -> bool:
    """Whether pixel `point` [x, y] lies in `box`, grown by `tolerance` pixels on every side."""
    x, y = float(point[0]), float(point[1])
    x0, y0, x1, y1 = (float(v) for v in box)
    return x0 - tolerance <= x < x1 + tolerance and y0 - tolerance <= y < y1 + tolerance


def pointing_game(points: Sequence[Sequence[float]], boxes: Sequence[Sequence[float]], *,
                  tolerance: float = 0.0) -> float:
    """Fraction of `points` inside their `boxes` (one box per point)."""
    if len(points) != len(boxes):
        raise ValueError(f"one box per point: got {len(points)} points and {len(boxes)} boxes")
    if not points:
        return float("nan")
    return float(np.mean([hit(p, b, tolerance=tolerance) for p, b in zip(points, boxes)]))


def chance_level(boxes: Sequence[Sequence[float]], sizes: Sequence[Sequence[int]]) -> float:
    """The expected score of a uniformly random point: mean box area / image area (`sizes` as
    (width, height) per image)."""
    fractions = []
    for (x0, y0, x1, y1), (w, h) in zip(boxes, sizes):
        inside = max(0.0, min(x1, w) - max(x0, 0)) * max(0.0, min(y1, h) - max(y0, 0))
        fractions.append(inside / float(w * h))
    return float(np.mean(fractions)) if fractions else float("nan")


def random_points(sizes: Sequence[Sequence[int]], *, seed: int = 0) -> list[list[int]]:
    """One uniformly random pixel per image (`sizes` as (width, height)), the empirical baseline."""
    rng = np.random.default_rng(seed)
    return [[int(rng.integers(w)), int(rng.integers(h))] for w, h in sizes]
