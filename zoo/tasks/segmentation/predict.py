"""From per-pixel class scores to a prediction record: a mask PNG at the original image size and
the fraction of the image each class covers. Pure numpy / PIL: runs in predict's worker threads."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np


def labels_for(meta: dict, num_classes: int) -> list[str]:
    """The model's labels; the VOC names for an unlabelled 21-class model; else "0", "1", ..."""
    labels = list(meta.get("labels") or [])
    if len(labels) == num_classes:
        return labels
    if num_classes == 21:
        from zoo.tasks.segmentation.masks import VOC_CLASSES

        return list(VOC_CLASSES)
    return [labels[i] if i < len(labels) else str(i) for i in range(num_classes)]


def single_output(outputs: Any) -> np.ndarray:
    """The model's (batch, height, width, classes) scores, whatever container they come in."""
    from zoo.training.task import first_output

    scores = first_output(outputs)
    if scores.ndim != 4:
        from zoo.errors import UsageError

        raise UsageError(f"A segmentation model must output (batch, height, width, classes); this one outputs shape "
                         f"{tuple(scores.shape)}. If it is not a segmentation model, fix `task` in its metadata.json.")
    return scores


def scores_to_mask(scores: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, C) class scores -> (H, W) class indices at `size`, resizing each class map bilinearly
    first (smoother borders than resizing the argmax).

    The argmax runs one class at a time (best score so far + its index), so a 12 MP photo through a
    21-class model holds two full-size score maps, never all 21 at once.
    """
    from PIL import Image

    scores = np.asarray(scores, np.float32)
    height, width = int(size[0]), int(size[1])
    dtype = np.uint8 if scores.shape[2] <= 256 else np.uint16
    if scores.shape[:2] == (height, width):
        return scores.argmax(axis=-1).astype(dtype)
    best = mask = None
    for c in range(scores.shape[2]):
        score = np.asarray(Image.fromarray(np.ascontiguousarray(scores[:, :, c]), mode="F")
                           .resize((width, height), Image.Resampling.BILINEAR))
        if best is None:
            best, mask = score.copy(), np.zeros((height, width), dtype)
            continue
        better = score > best  # strict: ties keep the lower class, as argmax does
        np.copyto(best, score, where=better)
        mask[better] = c
        del better
    return mask


def class_fractions(mask: np.ndarray, labels: list[str]) -> dict[str, float]:
    """{label: fraction of the pixels}, largest first, classes present only."""
    counts = np.bincount(mask.reshape(-1).astype(np.int64), minlength=len(labels))
    total = max(int(mask.size), 1)
    order = np.argsort(-counts, kind="stable")
    return {labels[i] if i < len(labels) else str(i): round(float(counts[i]) / total, 6) for i in order if counts[i]}


def mask_paths(options: dict):
    """Where this run's masks go, one new path per call of next().

    The task object is shared by every run, so the run's folder and counter live in the run's
    `options` (zoo.inference makes one dict per run). With a save dir, masks are written there
    under hidden names that `save` renames to <stem>_mask.png once the source is known. Without
    one, they go to a new temporary folder per run (tempfile honours TMPDIR), since the record
    must name a file that is still there after `zoo predict` exits.
    """
    state = options.get("_segmentation_masks")
    if state is None:
        if options.get("save_dir") is not None:
            folder, pattern = Path(options["save_dir"]), f".zoo-mask-{os.getpid()}-{{:06d}}.png"
        else:
            import tempfile

            folder, pattern = Path(tempfile.mkdtemp(prefix="zoo-masks-")), "mask_{:06d}.png"
        state = options["_segmentation_masks"] = (folder / pattern.format(n) for n in itertools.count())
    return state
