"""Explanations of zoo models: attribution maps (zoo.explain), what neurons respond to, and the
checks that tell an explanation from an edge detector (sanity, pointing game).

Named `explaining` (not `explain`) so that importing it never shadows the function zoo.explain.
"""

from __future__ import annotations

from zoo.explaining.maps import explain, iter_explain
from zoo.explaining.methods import METHODS

__all__ = ["explain", "iter_explain", "METHODS"]
