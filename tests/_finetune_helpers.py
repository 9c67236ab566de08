"""Helpers for the fine-tuning tests: tiny class-folder datasets and CLI runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def write_digits(root: Path, *, per_class: int | None = None, classes=range(10), offset: int = 0,
                 limit: int | None = None) -> Path:
    """scikit-learn's 8x8 digits (those with index in [offset, limit)), upscaled to 32x32 grayscale
    PNGs in one folder per class."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    counts: dict[int, int] = {}
    for i, (img, y) in enumerate(zip(d.images, d.target)):
        if int(y) not in classes or i < offset or (limit is not None and i >= limit):
            continue
        if per_class is not None and counts.get(int(y), 0) >= per_class:
            continue
        counts[int(y)] = counts.get(int(y), 0) + 1
        folder = root / str(y)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (img * 255 / 16).clip(0, 255).astype(np.uint8)
        Image.fromarray(pixels).resize((32, 32), Image.BILINEAR).save(folder / f"{i}.png")
    return root


def zoo_cli(*args: str, env: dict | None = None, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", **(env or {})}
    return subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, **kwargs)


def zoo_popen(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "zoo", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=full_env, **kwargs)


def history_epochs(out: Path) -> list[int]:
    import csv

    with open(out / "history.csv", newline="") as fh:
        return [int(row["epoch"]) for row in csv.DictReader(fh)]


COLOURS = {"red": (220, 30, 30), "green": (30, 220, 30), "blue": (30, 30, 220)}  # apart in grayscale too


def write_colours(root: Path, *, per_class: int = 40, size: int = 64, seed: int = 0) -> Path:
    """Three trivially separable colour classes: each image one colour (jittered per image) plus pixel
    noise, `size` px RGB PNGs in one folder per class. Another seed gives fresh images."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name, rgb in COLOURS.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            base = np.asarray(rgb, np.float32) + rng.uniform(-15, 15, 3)
            pixels = base + rng.normal(0, 20, (size, size, 3))
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{seed}_{i}.png")
    return root
