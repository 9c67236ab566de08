"""Semantic segmentation data: images with same-stem PNG masks of class indices.

Layouts of DATA (checked in this order):
    DATA/train/{images,masks}/ + DATA/val/{images,masks}/   explicit splits
    DATA/images/ + DATA/masks/                              one pool (split by val_split)
    DATA/JPEGImages/ + DATA/SegmentationClass/              Pascal VOC (also DATA/VOC2012/..., DATA/VOCdevkit/VOC2012/...);
                                                            splits from ImageSets/Segmentation/{train,val}.txt
Masks: PNG, palette ("P": the palette index is the class) or plain indices ("L"/"I;16"); RGB
masks are read through the VOC colour map. 255 = ignore (VOC's object borders). Class names:
DATA/classes.txt (one per line, line 1 = index 0), else the 21 VOC classes.

Every pair is checked before training: a missing mask, a mask of another size than its image,
or a value that is neither a class index nor 255 raises a UsageError naming the file, unless
the caller asked to skip bad pairs (`skip_bad=True`), in which case they are counted and listed.
Images are decoded once with zoo.data.images.decode_image and resized to the training size
(image bilinear, mask nearest), then augmented on the fly identically for image and mask.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.errors import ImageError, UsageError

IGNORE_INDEX = 255
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
MASK_SUFFIXES = (".png",)
AUGMENTS = {"none": None, "light": (0.75, 1.25, False), "strong": (0.5, 2.0, True)}  # (min scale, max scale, colour)


def voc_palette() -> np.ndarray:
    """The Pascal VOC colour map (256 x 3 uint8): index i's colour from the bits of i."""
    palette = np.zeros((256, 3), np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette[i] = (r, g, b)
    return palette


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


# --------------------------------------------------------------------------- masks


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A mask PNG as HxW uint8 class indices (palette index, gray value, or VOC colour for RGB)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode == "P":
                return np.asarray(im, np.uint8).copy()
            if mode in ("L", "1"):
                return np.asarray(im.convert("L"), np.uint8).copy()
            if mode in ("I", "I;16", "I;16B", "I;16L"):
                values = np.asarray(im, np.int64)
                if values.size and (values.min() < 0 or values.max() > 255):
                    raise UsageError(f"Mask {path} holds values up to {values.max()}; masks need class indices "
                                     f"0..254 and 255 for ignore. Re-save it as an 8-bit PNG.")
                return values.astype(np.uint8)
            rgb = np.asarray(im.convert("RGB"), np.uint8)
    except UsageError:
        raise
    except FileNotFoundError:
        raise UsageError(f"Mask {path} does not exist.") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UsageError(f"Mask {path} cannot be read as an image ({' '.join(str(exc).split())}). "
                         f"Re-save it as a PNG of class indices.") from None
    return _rgb_to_index(rgb, path)


def _rgb_to_index(rgb: np.ndarray, path: Path) -> np.ndarray:
    palette = voc_palette().astype(np.int64)
    codes = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    lookup = {int(c): i for i, c in enumerate(codes) if i < 256}
    pix = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    uniq, inverse = np.unique(pix, return_inverse=True)
    unknown = [int(u) for u in uniq if int(u) not in lookup]
    if unknown:
        u = unknown[0]
        raise UsageError(f"Mask {path} is an RGB image with colour {(u >> 16, (u >> 8) & 255, u & 255)}, which is not "
                         f"in the VOC colour map. Save masks as palette or gray PNGs of class indices.")
    return np.asarray([lookup[int(u)] for u in uniq], np.uint8)[inverse].reshape(rgb.shape[:2])


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """Write HxW class indices as a palette PNG with the VOC colours, atomically."""
    from PIL import Image

    path = Path(path)
    mask = np.asarray(mask)
    if mask.size and mask.max() > 255:
        image = Image.fromarray(mask.astype(np.uint16))  # more classes than a palette holds
    else:
        image = Image.fromarray(mask.astype(np.uint8), mode="P")
        image.putpalette(voc_palette().reshape(-1).tolist())
    from zoo.modeldir import atomic_save_image

    return atomic_save_image(image, path)


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
    pairs = Pairs([], [])
    for image in list_images(images_dir):
        mask = masks.get(image.stem)
        if mask is None:
            if not skip_bad:
                raise UsageError(f"Image {image} has no mask: expected {masks_dir / (image.stem + '.png')}. "
                                 f"Add the mask, remove the image, or skip such pairs (skip_bad).")
            pairs.skipped.append((str(image), "no mask"))
            continue
        pairs.images.append(image)
        pairs.masks.append(mask)
    return pairs


def _voc_split(root: Path, names: list[str], *, skip_bad: bool) -> Pairs:
    pairs = Pairs([], [])
    for stem in names:
        image, mask = root / "JPEGImages" / f"{stem}.jpg", root / "SegmentationClass" / f"{stem}.png"
        missing = image if not image.exists() else mask if not mask.exists() else None
        if missing is not None:
            if not skip_bad:
                raise UsageError(f"{missing} is missing (listed in ImageSets/Segmentation). "
                                 f"Restore it, or skip such pairs (skip_bad).")
            pairs.skipped.append((str(missing), "missing"))
            continue
        pairs.images.append(image)
        pairs.masks.append(mask)
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


def median_frequency_weights(counts: np.ndarray) -> np.ndarray:
    """Eigen & Fergus median-frequency balancing: median(freq) / freq; absent classes get 0."""
    counts = np.asarray(counts, np.float64)
    freq = counts / max(counts.sum(), 1.0)
    present = freq > 0
    weights = np.zeros_like(freq)
    if present.any():
        weights[present] = np.median(freq[present]) / freq[present]
    return weights.astype(np.float32)


# --------------------------------------------------------------------------- augmentation (TensorFlow)


def augmenter(level: str, *, seed: int = 0):
    """batched (images float32 NxHxWxC, masks int32 NxHxW) -> the same, with the same random flip
    and scale-crop applied to image and mask (bilinear for images, nearest for masks; pixels
    zoomed out of the frame are ignore in the mask), plus colour jitter on the image for "strong"."""
    if level not in AUGMENTS:
        raise UsageError(f"`augment` must be one of {', '.join(AUGMENTS)}. Received: augment={level!r}.")
    if AUGMENTS[level] is None:
        return None
    lo, hi, colour = AUGMENTS[level]
    import tensorflow as tf

    rng = tf.random.Generator.from_seed(seed)

    def apply(images, masks, *rest):
        n = tf.shape(images)[0]
        flip = rng.uniform([n]) < 0.5
        images = tf.where(flip[:, None, None, None], tf.reverse(images, [2]), images)
        masks = tf.where(flip[:, None, None], tf.reverse(masks, [2]), masks)
        # A box of 1/scale of the frame, anywhere it overlaps; boxes beyond [0, 1] zoom out.
        scale = tf.exp(rng.uniform([n], np.log(lo), np.log(hi)))
        extent = 1.0 / scale
        y0 = rng.uniform([n]) * (1.0 - extent)
        x0 = rng.uniform([n]) * (1.0 - extent)
        boxes = tf.stack([y0, x0, y0 + extent, x0 + extent], axis=1)
        idx = tf.range(n)
        size = tf.shape(images)[1:3]
        images = tf.image.crop_and_resize(images, boxes, idx, size, method="bilinear", extrapolation_value=0.0)
        m = tf.image.crop_and_resize(tf.cast(masks[..., None], tf.float32), boxes, idx, size, method="nearest",
                                     extrapolation_value=float(IGNORE_INDEX))
        masks = tf.cast(tf.round(m[..., 0]), masks.dtype)
        if colour:
            gain = rng.uniform([n, 1, 1, 1], 0.75, 1.25)
            shift = rng.uniform([n, 1, 1, 1], -25.0, 25.0)
            mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
            images = (images - mean) * gain + mean + shift
        images = tf.clip_by_value(images, 0.0, 255.0)
        return (images, masks, *rest)

    return apply
