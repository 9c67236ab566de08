"""Synthetic data for the pointing game: one shape per image, the class is the shape, the box known.

    python scripts/make_shapes_pointing.py --out data/pointing --images 400 --test-images 60 --size 128

Each image is a dark, noisy background with a few faint straight lines as clutter (so "the
brightest thing" and "any edge" are not the same as "the object") and one bright square, circle or
triangle of a random colour, 25%..45% of the side, anywhere in the image. Training images go to
class folders (OUT/train/<class>/), held-out ones to OUT/test/ with OUT/test/boxes.json:
[{"path", "label", "box": [x_min, y_min, x_max, y_max], "size": [width, height]}] (x_max, y_max
exclusive). The same seed always gives the same files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

CLASSES = ("square", "circle", "triangle")


def draw(rng: np.random.Generator, *, size: int) -> tuple[np.ndarray, str, tuple[int, int, int, int]]:
    """One image (size x size x 3 uint8), its class and its box."""
    from PIL import Image, ImageDraw

    background = rng.integers(0, 70, 3)
    pixels = background + rng.normal(0.0, 10.0, (size, size, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw_ = ImageDraw.Draw(image)
    for _ in range(3):  # clutter: faint lines across the image
        ends = [tuple(int(v) for v in rng.integers(0, size, 2)) for _ in range(2)]
        draw_.line(ends, fill=tuple(int(v) for v in rng.integers(60, 130, 3)), width=int(rng.integers(1, 3)))
    side = int(rng.integers(int(0.25 * size), int(0.45 * size) + 1))
    x0, y0 = (int(v) for v in rng.integers(0, size - side + 1, 2))
    x1, y1 = x0 + side - 1, y0 + side - 1  # PIL's coordinates are inclusive
    colour = rng.integers(150, 256, 3)
    colour[rng.integers(3)] = 255  # bright in at least one channel
    fill = tuple(int(v) for v in colour)
    label = CLASSES[int(rng.integers(len(CLASSES)))]
    if label == "square":
        draw_.rectangle((x0, y0, x1, y1), fill=fill)
    elif label == "circle":
        draw_.ellipse((x0, y0, x1, y1), fill=fill)
    else:
        draw_.polygon([(x0, y1), (x1, y1), ((x0 + x1) / 2, y0)], fill=fill)
    return np.asarray(image), label, (x0, y0, x0 + side, y0 + side)


def make_arrays(n: int, *, size: int, seed: int) -> tuple[np.ndarray, np.ndarray, list]:
    """(images (n, size, size, 3) uint8, class indices (n,), boxes) in memory."""
    rng = np.random.default_rng(seed)
    images, labels, boxes = [], [], []
    for _ in range(n):
        image, label, box = draw(rng, size=size)
        images.append(image)
        labels.append(CLASSES.index(label))
        boxes.append(box)
    return np.stack(images), np.array(labels), boxes


def make_folders(out: Path, *, images: int, test_images: int, size: int, seed: int) -> tuple[Path, list[dict]]:
    """Class folders for training, held-out images with boxes.json; returns (train dir, test rows)."""
    from PIL import Image

    out = Path(out)
    train, labels, _ = make_arrays(images, size=size, seed=seed)
    for n, (image, label) in enumerate(zip(train, labels)):
        folder = out / "train" / CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{n:05d}.png")
    test, labels, boxes = make_arrays(test_images, size=size, seed=seed + 1000)
    (out / "test").mkdir(parents=True, exist_ok=True)
    rows = []
    for n, (image, label, box) in enumerate(zip(test, labels, boxes)):
        path = out / "test" / f"{n:05d}.png"
        Image.fromarray(image).save(path)
        rows.append({"path": str(path), "label": CLASSES[label], "box": list(box), "size": [size, size]})
    (out / "test" / "boxes.json").write_text(json.dumps(rows, indent=1))
    return out / "train", rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--test-images", type=int, default=60)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train, rows = make_folders(args.out, images=args.images, test_images=args.test_images, size=args.size,
                               seed=args.seed)
    print(f"{args.images} training images in {train}, {len(rows)} held-out in {args.out / 'test'}")


if __name__ == "__main__":
    main()
