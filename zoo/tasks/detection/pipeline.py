"""Detection samples -> tf.data: readable images, the train/val split, and the per-sample loader
(decode once and cache, augment in numpy, encode YOLOv2 targets) run inside tf.numpy_function."""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from zoo.errors import ImageError, UsageError
from zoo.tasks.detection.augment import augment
from zoo.tasks.detection.boxes import encode_targets
from zoo.tasks.detection.data import DetectionSet, Sample, load_sample

STRIDE = 32
CACHE_BYTES = 512 << 20  # decoded images kept in memory (decode once) up to this size


def input_size(opts) -> int:
    """The square input side the engine resolved (opts.input_shape), checked against the head's stride."""
    size = int(opts.input_shape[0])
    if size < STRIDE or size % STRIDE:
        raise UsageError(f"Detection needs an image size that is a multiple of {STRIDE}. Received: {size}. "
                         f"Try --image-size 224, 320 or 416.")
    return size


def readable(samples: list[Sample], summary: dict) -> tuple[list[Sample], list[tuple[int, int]]]:
    """Samples whose image header opens, and their (height, width); the others are counted."""
    from PIL import Image

    kept, sizes, bad = [], [], []
    for sample in samples:
        try:
            with Image.open(sample.path) as im:
                w, h = im.size
            if sample.size is None or sample.normalised:
                sizes.append((h, w))
            else:
                sizes.append(sample.size)
            kept.append(sample)
        except Exception:  # any unreadable file: skipped and counted, never the whole run
            bad.append(str(sample.path))
    if bad:
        summary["skipped_images"] = summary.get("skipped_images", 0) + len(bad)
        summary["skipped_files"] = bad[:20]
    return kept, sizes


def split(dataset: DetectionSet, *, fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """The VOC ImageSets train/val lists when the data has both, else a seeded random `fraction` for validation."""
    if dataset.splits.get("train") and dataset.splits.get("val"):
        by_stem = {s.path.stem: s for s in dataset.samples}
        train = [by_stem[k] for k in dataset.splits["train"] if k in by_stem]
        val = [by_stem[k] for k in dataset.splits["val"] if k in by_stem]
        if train and val:
            return train, val
    order = np.random.default_rng(seed).permutation(len(dataset.samples))
    n_val = int(round(fraction * len(order)))
    if fraction > 0 and len(order) >= 2:
        n_val = min(max(n_val, 1), len(order) - 1)
    val = [dataset.samples[i] for i in sorted(order[:n_val])]
    train = [dataset.samples[i] for i in sorted(order[n_val:])]
    return train, val


def normalised_wh(samples: Sequence[Sample], sizes: Sequence[tuple[int, int]]) -> np.ndarray:
    """Box (w, h) as fractions of the letterboxed input side: pixels / max(image H, W)."""
    rows = []
    for sample, (h, w) in zip(samples, sizes):
        boxes = sample.boxes.astype(np.float64)
        if sample.normalised:
            boxes = boxes * np.array([w, h, w, h])
        rows.append((boxes[:, 2:] - boxes[:, :2]) / max(h, w))
    return np.concatenate(rows) if rows else np.zeros((0, 2))


class _Loader:
    """Index -> (image float32 S x S x 3 in [0, 255], targets (g, g, A, 6)), run inside tf.numpy_function."""

    def __init__(self, samples: list[Sample], anchors: np.ndarray, size: int, level: str, seed: int,
                 mosaic: float = 0.0):
        self.samples, self.anchors, self.size, self.level, self.seed = samples, anchors, size, level, seed
        self.mosaic = mosaic if level != "none" and len(samples) >= 4 else 0.0
        self.grid = size // STRIDE
        self.cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.cached_bytes = 0
        self.calls = np.zeros(len(samples), dtype=np.int64)
        self.lock = threading.Lock()
        self.failed: set[str] = set()

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        hit = self.cache.get(i)
        if hit is not None:
            return hit
        try:
            item = load_sample(self.samples[i])
        except ImageError:
            self.failed.add(str(self.samples[i].path))
            item = (np.full((self.size, self.size, 3), 114, np.uint8), np.zeros((0, 4), np.float32))
        with self.lock:
            if self.cached_bytes + item[0].nbytes <= CACHE_BYTES:
                self.cache[i] = item
                self.cached_bytes += item[0].nbytes
        return item

    def item(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        image, boxes = self.load(i)
        classes = self.samples[i].classes
        if len(boxes) != len(classes):  # a failed decode gave an empty sample
            classes = classes[:0]
        return image, boxes, classes

    def __call__(self, index) -> tuple[np.ndarray, np.ndarray]:
        i = int(index)
        with self.lock:
            self.calls[i] += 1
            call = int(self.calls[i])
        # Seeded by (seed, sample, visit): the same views in every run, whatever the thread order.
        rng = np.random.default_rng([self.seed, i, call])
        image, boxes, classes = self.item(i)
        others = None
        if self.mosaic and rng.random() < self.mosaic:
            others = [self.item(int(j)) for j in rng.choice(len(self.samples), 3, replace=False)]
        out, boxes, classes = augment(image, boxes, classes, self.size, rng, level=self.level, others=others)
        targets = encode_targets(boxes / self.size, classes, self.anchors, self.grid)
        return out.astype(np.float32), targets


def make_dataset(samples: list[Sample], anchors, size: int, *, augment_level: str = "none", seed: int = 0,
                 shuffle: bool = False, mosaic: float = 0.0):
    """An unbatched tf.data.Dataset of (image, targets) for the YOLO loss; `mosaic` is the probability
    that a training view is a mosaic of four images."""
    import tensorflow as tf

    anchors = np.asarray(anchors, dtype=np.float64)
    loader = _Loader(samples, anchors, size, augment_level, seed, mosaic)
    grid = size // STRIDE
    ds = tf.data.Dataset.range(len(samples))
    if shuffle:
        ds = ds.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True)

    def load(i):
        image, targets = tf.numpy_function(loader, [i], [tf.float32, tf.float32], stateful=False)
        image.set_shape((size, size, 3))
        targets.set_shape((grid, grid, len(anchors), 6))
        return image, targets

    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
