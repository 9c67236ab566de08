"""Classification data: class folders or a CSV `path,label` -> decoded arrays.

    index = scan(data)                      # validates the layout; no pixel decoded yet
    pixels, ok, skipped = decode_all(index.paths, ...)   # decode once (threads), resize to the model size
    train, val = stratified_split(...)      # unless --val names a folder

ClassificationTask.load_data turns the arrays into the tf.data datasets the trainer consumes.

Every image is decoded with zoo.data.images.decode_image and resized with resize_for_model
("squash", bilinear) so training and `zoo predict` see the same pixels. Files that cannot be
decoded are skipped and counted; the decoded uint8 arrays are kept in memory (or a memmap when
large), so epochs never decode again and feature caching is one forward pass.
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.errors import ImageError, UsageError

AUGMENTS = ("none", "light", "strong")
RESIZE = {"resize": "squash", "interpolation": "bilinear"}  # recorded in metadata for predict
_MEMMAP_BYTES = 2 << 30  # above this, decoded pixels go to a memory-mapped temp file


@dataclass
class Index:
    """Image paths with integer labels, and the class names (sorted)."""

    paths: list[Path]
    labels: np.ndarray
    classes: list[str]
    source: str = "folders"  # or "csv"
    notes: list[str] = field(default_factory=list)


def scan(data: str | os.PathLike, *, role: str = "DATA") -> Index:
    """Validate and list a class-folder tree or a CSV `path,label` (paths relative to the CSV)."""
    from zoo.data.images import IMAGE_EXTENSIONS, list_images

    path = Path(data)
    if not path.exists():
        raise UsageError(f"{role} {str(path)!r} does not exist. Give a folder of class folders or a CSV path,label.")
    if path.is_file() and path.suffix.lower() == ".csv":
        return _scan_csv(path, role=role)
    if not path.is_dir():
        raise UsageError(f"{role} {str(path)!r} is not a folder or a .csv file. Give a folder with one sub-folder per class.")
    class_dirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        loose = list_images(path)
        hint = f" It holds {len(loose)} loose images: put them in one sub-folder per class." if loose else ""
        raise UsageError(f"{role} {str(path)!r} has no class folders.{hint} Expected {path}/<class>/<image>.")
    paths: list[Path] = []
    labels: list[int] = []
    empty = []
    for i, folder in enumerate(class_dirs):
        found = list_images(folder, recursive=True)
        if not found:
            empty.append(folder.name)
        paths += found
        labels += [i] * len(found)
    if not paths:
        raise UsageError(f"{role} {str(path)!r} holds no images (suffixes {', '.join(sorted(IMAGE_EXTENSIONS))}) "
                         f"in its {len(class_dirs)} class folders.")
    if len(class_dirs) < 2:
        raise UsageError(f"Classification needs at least 2 classes; {role} {str(path)!r} has 1 ({class_dirs[0].name!r}). "
                         f"Add a folder per class.")
    if empty:
        raise UsageError(f"Class folder(s) {', '.join(repr(e) for e in empty)} in {role} {str(path)!r} hold no images. "
                         f"Add images or remove the folder.")
    return Index(paths, np.asarray(labels, np.int32), [d.name for d in class_dirs])


def _scan_csv(path: Path, *, role: str) -> Index:
    try:
        rows = _csv_rows(path, role=role)
    except UnicodeDecodeError as exc:
        raise UsageError(f"{role} CSV {path} is not UTF-8 ({exc.reason} at byte {exc.start}). "
                         f"Save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8`).") from None
    except csv.Error as exc:
        raise UsageError(f"{role} CSV {path} cannot be read as CSV ({exc}). Expected lines `path,label`.") from None
    if not rows:
        raise UsageError(f"{role} CSV {path} lists no images. Expected lines `path,label`.")
    return _index_from_rows(path, rows, role=role)


def _csv_rows(path: Path, *, role: str) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    with open(path, newline="", encoding="utf-8") as fh:
        for n, row in enumerate(csv.reader(fh)):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) < 2:
                raise UsageError(f"{role} CSV {path} line {n + 1} must be `path,label`. Received: {','.join(row)!r}.")
            if n == 0 and row[0].strip().lower() in ("path", "image", "file", "filename"):
                continue  # header
            rows.append((row[0].strip(), row[1].strip()))
    return rows


def _index_from_rows(path: Path, rows: list[tuple[str, str]], *, role: str) -> Index:
    classes = sorted({label for _, label in rows})
    if len(classes) < 2:
        raise UsageError(f"Classification needs at least 2 classes; {role} CSV {path} has {len(classes)} "
                         f"({', '.join(classes)}). Add rows of other classes.")
    lookup = {c: i for i, c in enumerate(classes)}
    paths = [(path.parent / p) if not Path(p).is_absolute() else Path(p) for p, _ in rows]
    labels = np.asarray([lookup[label] for _, label in rows], np.int32)
    return Index(paths, labels, classes, source="csv")


def check_same_classes(train: Index, val: Index, val_path) -> None:
    if train.classes != val.classes:
        extra = sorted(set(val.classes) - set(train.classes))
        missing = sorted(set(train.classes) - set(val.classes))
        raise UsageError(f"--val {str(val_path)!r} must have the same classes as DATA. "
                         f"Extra in --val: {extra or 'none'}; missing from --val: {missing or 'none'}.")


def decode_all(paths: list[Path], *, size: tuple[int, int], channels: int, workdir: Path | None = None,
               progress: bool = True) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Decode and resize every image once, in threads. Returns (pixels uint8 NxHxWxC, ok mask, skipped)."""
    from zoo.data.images import decode_image, resize_for_model

    h, w = int(size[0]), int(size[1])
    n = len(paths)
    nbytes = n * h * w * channels
    if nbytes > _MEMMAP_BYTES and workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        pixels = np.lib.format.open_memmap(workdir / "pixels.npy", mode="w+", dtype=np.uint8, shape=(n, h, w, channels))
    else:
        pixels = np.zeros((n, h, w, channels), np.uint8)
    ok = np.zeros(n, bool)
    skipped: list[tuple[str, str]] = []

    def one(i: int):
        try:
            image = decode_image(paths[i], channels=channels)
            pixels[i] = resize_for_model(image, (h, w), **RESIZE)[0]
            ok[i] = True
        except ImageError as exc:
            return str(paths[i]), str(exc)
        except OSError as exc:  # a file vanished or is unreadable between listing and reading
            return str(paths[i]), f"{type(exc).__name__}: {exc}"
        return None

    workers = min(8, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(workers) as pool:
        results = pool.map(one, range(n))
        if progress and n >= 256:
            from rich.progress import track

            results = track(results, total=n, description=f"decoding {n} images", transient=True)
        for bad in results:
            if bad is not None:
                skipped.append(bad)
    return pixels, ok, skipped


def stratified_split(labels: np.ndarray, *, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): each class keeps round(fraction * n) images for validation (>= 1 when
    the class has >= 2 images and fraction > 0), chosen by a seeded shuffle."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        k = int(round(fraction * len(idx)))
        if fraction > 0 and len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        else:
            k = 0
        val += idx[:k].tolist()
        train += idx[k:].tolist()
    return np.sort(np.asarray(train, np.int64)), np.sort(np.asarray(val, np.int64))


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Balanced weights n / (k * count_c) (sklearn's "balanced"); classes absent get 0."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 0.0)
    return weights.astype(np.float32)


def augmenter(level: str, *, seed: int, channels: int, flip: str = "none"):
    """A function on batched (x, y[, w]) that augments x on the fly (Keras preprocessing layers),
    or None for "none". light: small shifts and zoom; strong: also rotation, contrast, brightness.
    `flip` ("none", "horizontal", "vertical", "both") adds random flips: off unless asked, since a
    flip changes the class of digits, text and other oriented things."""
    if level not in AUGMENTS:
        raise UsageError(f"`augment` must be one of {', '.join(AUGMENTS)}. Received: augment={level!r}.")
    if level == "none":
        return None
    import keras

    L = keras.layers
    ops = [L.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=seed + 1),
           L.RandomZoom((-0.1, 0.1), fill_mode="reflect", seed=seed + 2)]
    if flip != "none":
        ops.insert(0, L.RandomFlip("horizontal_and_vertical" if flip == "both" else flip, seed=seed))
    if level == "strong":
        ops += [L.RandomRotation(0.08, fill_mode="reflect", seed=seed + 3), L.RandomContrast(0.3, seed=seed + 4)]
        if channels == 3:
            ops.append(L.RandomBrightness(0.2, value_range=(0, 255), seed=seed + 5))
    pipeline = keras.Sequential(ops, name=f"augment_{level}")

    def apply(*batch):
        import tensorflow as tf

        x = tf.cast(batch[0], tf.float32)
        x = tf.clip_by_value(pipeline(x, training=True), 0.0, 255.0)
        return (x, *batch[1:])

    return apply
