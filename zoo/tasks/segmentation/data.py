"""Semantic segmentation data: images with same-stem PNG masks of class indices.

Layouts of DATA (checked in this order):
    DATA/train/{images,masks}/ + DATA/val/{images,masks}/   explicit splits
    DATA/images/ + DATA/masks/                              one pool (split by val_split)
    DATA/JPEGImages/ + DATA/SegmentationClass/              Pascal VOC (also DATA/VOC2012/..., DATA/VOCdevkit/VOC2012/...);
                                                            splits from ImageSets/Segmentation/{train,val}.txt
Masks: PNGs of class indices, 255 = ignore (read by zoo.tasks.segmentation.masks). Class names:
DATA/classes.txt (one per line, line 1 = index 0), else the 21 VOC classes.

Every pair is checked before training: a missing mask, a mask of another size than its image,
or a value that is neither a class index nor 255 raises a UsageError naming the file, unless
the caller asked to skip bad pairs (`skip_bad=True`), in which case they are counted and listed.
Images are decoded once with zoo.data.images.decode_image and resized to the training size
(image bilinear, mask nearest); zoo.tasks.segmentation.augment then moves image and mask
together on the trainer's batches.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.errors import ImageError, UsageError
from zoo.tasks.segmentation.masks import IGNORE_INDEX, VOC_CLASSES, read_mask

MASK_SUFFIXES = (".png",)


@dataclass
class Pairs:
    """Image/mask paths of one split, and what was left out."""

    images: list[Path]
    masks: list[Path]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


@dataclass
class Layout:
    root: Path
    kind: str  # "splits" | "pool" | "voc"
    labels: list[str]
    train: Pairs
    val: Pairs | None  # None: split `train` by val_split


# --------------------------------------------------------------------------- layouts


def read_labels(root: Path) -> list[str]:
    """classes.txt (one name per line, index = line number) if present, else the VOC classes."""
    path = root / "classes.txt"
    if not path.exists():
        return list(VOC_CLASSES)
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) < 2:
        raise UsageError(f"{path} must list at least 2 class names, one per line (background first). "
                         f"Received {len(names)}.")
    if len(names) > 255:
        raise UsageError(f"{path} lists {len(names)} classes; masks hold 0..254 (255 = ignore). Use at most 255.")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise UsageError(f"{path} lists class {dup!r} twice. Class names must be unique.")
    return names


def _voc_root(root: Path) -> Path | None:
    for cand in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012", root / "VOC2007", root / "VOCdevkit" / "VOC2007"):
        if (cand / "JPEGImages").is_dir() and (cand / "SegmentationClass").is_dir():
            return cand
    return None


def _pool(images_dir: Path, masks_dir: Path, *, skip_bad: bool) -> Pairs:
    from zoo.data.images import list_images

    masks = {p.stem: p for p in sorted(masks_dir.iterdir()) if p.suffix.lower() in MASK_SUFFIXES}

    def candidates():
        for image in list_images(images_dir):
            mask = masks.get(image.stem)
            problem = None if mask is not None else (
                f"Image {image} has no mask: expected {masks_dir / (image.stem + '.png')}. "
                f"Add the mask, remove the image, or skip such pairs (skip_bad).", "no mask")
            yield image, image, mask, problem

    return _collect(candidates(), skip_bad=skip_bad)


def _voc_split(root: Path, names: list[str], *, skip_bad: bool) -> Pairs:
    def candidates():
        for stem in names:
            image, mask = root / "JPEGImages" / f"{stem}.jpg", root / "SegmentationClass" / f"{stem}.png"
            missing = image if not image.exists() else mask if not mask.exists() else None
            problem = None if missing is None else (
                f"{missing} is missing (listed in ImageSets/Segmentation). Restore it, or skip such pairs (skip_bad).",
                "missing")
            yield missing, image, mask, problem

    return _collect(candidates(), skip_bad=skip_bad)


def _collect(candidates, *, skip_bad: bool) -> Pairs:
    """Pairs from (file to name, image, mask, problem) items; a problem is (error, short reason):
    an error, or with skip_bad the file and the reason in `skipped`."""
    pairs = Pairs([], [])
    for name, image, mask, problem in candidates:
        if problem is None:
            pairs.images.append(image)
            pairs.masks.append(mask)
        elif skip_bad:
            pairs.skipped.append((str(name), problem[1]))
        else:
            raise UsageError(problem[0])
    return pairs


def find_layout(data: str | os.PathLike, *, skip_bad: bool = False, role: str = "DATA") -> Layout:
    """Recognise the layout of `data` and list its image/mask pairs (no pixel decoded)."""
    root = Path(data)
    if not root.is_dir():
        raise UsageError(f"{role} {str(root)!r} is not a folder. Segmentation data is a folder with images/ and "
                         f"masks/ (same stems), or the VOC layout (JPEGImages/ + SegmentationClass/).")
    if all((root / s / d).is_dir() for s in ("train", "val") for d in ("images", "masks")):
        labels = read_labels(root)
        train = _pool(root / "train" / "images", root / "train" / "masks", skip_bad=skip_bad)
        val = _pool(root / "val" / "images", root / "val" / "masks", skip_bad=skip_bad)
        layout = Layout(root, "splits", labels, train, val)
    elif (root / "images").is_dir() and (root / "masks").is_dir():
        layout = Layout(root, "pool", read_labels(root), _pool(root / "images", root / "masks", skip_bad=skip_bad), None)
    elif (voc := _voc_root(root)) is not None:
        labels = read_labels(voc if (voc / "classes.txt").exists() else root)
        sets = voc / "ImageSets" / "Segmentation"
        if (sets / "train.txt").exists() and (sets / "val.txt").exists():
            def stems(name):
                return [ln.split()[0] for ln in (sets / name).read_text().splitlines() if ln.strip()]
            layout = Layout(voc, "voc", labels, _voc_split(voc, stems("train.txt"), skip_bad=skip_bad),
                            _voc_split(voc, stems("val.txt"), skip_bad=skip_bad))
        else:
            stems = [p.stem for p in sorted((voc / "SegmentationClass").glob("*.png"))]
            layout = Layout(voc, "voc", labels, _voc_split(voc, stems, skip_bad=skip_bad), None)
    else:
        raise UsageError(f"{role} {str(root)!r} is not a segmentation dataset: expected images/ + masks/ (same "
                         f"stems, PNG masks), train/ and val/ with those, or VOC's JPEGImages/ + SegmentationClass/.")
    if not layout.train.images:
        raise UsageError(f"{role} {str(root)!r} has no image with a mask ({len(layout.train.skipped)} skipped). "
                         f"Masks are PNGs with the same stem as their image.")
    return layout


def find_splits(data, val, *, skip_bad: bool) -> tuple[Layout, Pairs | None, str]:
    """DATA's layout and where validation comes from: (layout, validation pairs or None to split
    DATA, "--val" | DATA's layout kind | "split"). A --val folder must have DATA's classes."""
    layout = find_layout(data, skip_bad=skip_bad)
    if not val:
        return layout, layout.val, layout.kind if layout.val is not None else "split"
    other = find_layout(val, skip_bad=skip_bad, role="--val")
    if other.labels != layout.labels:
        train, given = layout.labels, other.labels
        raise UsageError(f"--val {str(val)!r} must have the same classes as DATA ({len(train)}: {', '.join(train[:4])}...). "
                         f"Received {len(given)}: {', '.join(given[:4])}... Give it the same classes.txt.")
    return layout, other.val or other.train, "--val"


# --------------------------------------------------------------------------- decoding and checks


def load_pair(image_path: Path, mask_path: Path, *, num_classes: int, channels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(image HxWxC uint8, mask HxW uint8) at the original size, after the checks of the module docstring."""
    from zoo.data.images import decode_image

    image = decode_image(image_path, channels=channels)
    mask = read_mask(mask_path)
    if image.shape[:2] != mask.shape:
        raise UsageError(f"Mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image {image_path} is "
                         f"{image.shape[1]}x{image.shape[0]} (width x height). Masks must have their image's size.")
    bad = np.unique(mask[(mask >= num_classes) & (mask != IGNORE_INDEX)])
    if bad.size:
        raise UsageError(f"Mask {mask_path} has value(s) {', '.join(map(str, bad[:5].tolist()))} but there are "
                         f"{num_classes} classes (0..{num_classes - 1}; 255 = ignore). Fix the mask, list the classes "
                         f"in classes.txt, or mark those pixels 255.")
    return image, mask


def resize_pair(image: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Squash to size (height, width): the image bilinear (as predict does), the mask nearest."""
    from PIL import Image

    from zoo.data.images import resize_for_model

    h, w = size
    image = resize_for_model(image, (h, w), resize="squash", interpolation="bilinear")[0]
    if mask.shape != (h, w):
        mask = np.asarray(Image.fromarray(mask).resize((w, h), Image.Resampling.NEAREST), np.uint8)
    return image, mask


def decode_pairs(pairs: Pairs, *, size: tuple[int, int], num_classes: int, channels: int = 3,
                 skip_bad: bool = False, progress: bool = False) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Decode, check and resize every pair once, in threads: (images NxHxWxC, masks NxHxW, skipped)."""
    h, w = size
    n = len(pairs.images)
    images = np.zeros((n, h, w, channels), np.uint8)
    masks = np.zeros((n, h, w), np.uint8)
    ok = np.zeros(n, bool)

    def one(i: int):
        try:
            image, mask = load_pair(pairs.images[i], pairs.masks[i], num_classes=num_classes, channels=channels)
            images[i], masks[i] = resize_pair(image, mask, (h, w))
            ok[i] = True
        except (ImageError, UsageError) as exc:
            if not skip_bad:
                raise UsageError(f"{exc} (skip bad pairs with skip_bad)" if isinstance(exc, ImageError) else str(exc)) from None
            return str(pairs.images[i]), str(exc)
        return None

    with ThreadPoolExecutor(min(8, 2 * (os.cpu_count() or 2))) as pool:
        results = pool.map(one, range(n))
        if progress and n >= 64:
            from rich.progress import track

            results = track(results, total=n, description="reading masks")
        skipped = [r for r in results if r is not None]
    return images[ok], masks[ok], list(pairs.skipped) + skipped


def class_pixels(masks: np.ndarray, num_classes: int) -> np.ndarray:
    """Pixels per class (ignore excluded)."""
    values = masks[masks != IGNORE_INDEX].astype(np.int64)
    return np.bincount(values, minlength=num_classes)[:num_classes]


def random_split(images: np.ndarray, masks: np.ndarray, *, fraction: float, seed: int):
    """((train images, masks), (val images, masks)): a seeded random `fraction` for validation,
    none when that would leave nothing to train on."""
    order = np.random.default_rng(seed).permutation(len(images))
    n_val = int(round(len(images) * fraction))
    if n_val and len(images) - n_val < 1:
        n_val = 0
    train, val = order[n_val:], order[:n_val]
    return (images[train], masks[train]), (images[val], masks[val])


def to_dataset(images: np.ndarray, masks: np.ndarray):
    """Unbatched tf.data of (image float32 HxWxC in [0, 255], mask int32 HxW); the trainer batches."""
    import tensorflow as tf

    def cast(image, mask):
        return tf.cast(image, tf.float32), tf.cast(mask, tf.int32)

    return tf.data.Dataset.from_tensor_slices((images, masks)).map(cast)
