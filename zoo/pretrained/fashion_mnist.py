"""Fashion-MNIST reader for the shipped lenet5.fashion_mnist weights (recipe and accuracy test).

Reads the four idx .gz files of Debian's `dataset-fashion-mnist` (MIT) directly: no download.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def data_root() -> Path:
    return Path(os.environ.get("ZOO_FASHION_MNIST", DEFAULT_ROOT))


def available(root: Path | None = None) -> bool:
    root = root or data_root()
    return all((root / name).is_file() for pair in _FILES.values() for name in pair)


def read_idx(path: Path) -> np.ndarray:
    """An idx file (gzipped): magic (0, 0, dtype 0x08 = uint8, ndim), big-endian dims, data."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    if raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not a uint8 idx file (magic {raw[:4]!r}).")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    return data.reshape(dims)


def load_split(split: str, root: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels int64 (N,)) of "train" (60,000) or "test" (10,000)."""
    root = root or data_root()
    images, labels = _FILES[split]
    return read_idx(root / images), read_idx(root / labels).astype(np.int64)


def to_model_input(images: np.ndarray, size: int = 32) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, size, size, 1) pixels in [0, 255], resized bilinearly.

    A bilinear "squash" resize is what `zoo predict` applies to any image for this model, so the
    shipped weights see the same pixels in training and in prediction.
    """
    import tensorflow as tf

    x = tf.convert_to_tensor(images[..., None], dtype=tf.float32)
    return tf.image.resize(x, (size, size), method="bilinear").numpy()
