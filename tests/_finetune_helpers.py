"""Helpers for the fine-tuning tests: tiny class-folder datasets and CLI runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def write_digits(root: Path, *, per_class: int | None = None, classes=range(10), offset: int = 0) -> Path:
    """scikit-learn's 8x8 digits, upscaled to 32x32 grayscale PNGs in one folder per class."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    counts: dict[int, int] = {}
    for i, (img, y) in enumerate(zip(d.images, d.target)):
        if int(y) not in classes or i < offset:
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
