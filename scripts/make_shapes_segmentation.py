"""Synthetic segmentation data: coloured squares, circles and triangles with exact masks.

    python scripts/make_shapes_segmentation.py --out data/seg_train --images 200 --size 96 --seed 0
    python scripts/make_shapes_segmentation.py --out data/seg_test --images 100 --size 96 --seed 1

Writes OUT/images/NNNNNN.png, OUT/masks/NNNNNN.png (palette PNG, VOC colours, value = class
index) and OUT/classes.txt (background, square, circle, triangle). Each image has a random
background colour with pixel noise and 1..--max-objects shapes of random colours (the colour
never tells the class, the shape does), each 25%..50% of the side; later shapes cover earlier
ones and the mask says so. Image and mask are drawn with the same unantialiased primitives, so
every mask pixel is exact. The same seed always gives the same files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

CLASSES = ("background", "square", "circle", "triangle")


def _colour(rng: np.random.Generator, away_from: tuple[int, ...]) -> tuple[int, int, int]:
    """A random colour far enough (L1 > 150) from the background to be seen."""
    while True:
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if sum(abs(a - b) for a, b in zip(colour, away_from)) > 150:
            return colour


def draw_pair(rng: np.random.Generator, *, size: int, max_objects: int = 3, min_frac: float = 0.25,
              max_frac: float = 0.5, shapes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """One (image HxWx3 uint8, mask HxW uint8) pair, with the first `shapes` shape classes."""
    from PIL import Image, ImageDraw

    background = tuple(int(v) for v in rng.integers(0, 256, 3))
    image = Image.new("RGB", (size, size), background)
    mask = Image.new("L", (size, size), 0)
    draw_image, draw_mask = ImageDraw.Draw(image), ImageDraw.Draw(mask)
    for _ in range(int(rng.integers(1, max_objects + 1))):
        side = int(rng.integers(max(3, int(min_frac * size)), max(4, int(max_frac * size)) + 1))
        x0 = int(rng.integers(0, size - side + 1))
        y0 = int(rng.integers(0, size - side + 1))
        x1, y1 = x0 + side - 1, y0 + side - 1  # PIL's corners are inclusive
        index = int(rng.integers(1, shapes + 1))
        colour = _colour(rng, background)
        for draw, fill in ((draw_image, colour), (draw_mask, index)):
            if CLASSES[index] == "square":
                draw.rectangle((x0, y0, x1, y1), fill=fill)
            elif CLASSES[index] == "circle":
                draw.ellipse((x0, y0, x1, y1), fill=fill)
            else:
                draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) / 2, y0)], fill=fill)
    pixels = np.asarray(image, np.int16) + rng.integers(-12, 13, (size, size, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8), np.asarray(mask, np.uint8)


def make_shapes(out: str | Path, *, images: int = 200, size: int = 96, seed: int = 0, max_objects: int = 3,
                shapes: int = 3, min_frac: float = 0.25, max_frac: float = 0.5) -> Path:
    """Write a seeded synthetic segmentation dataset (images/ + masks/ + classes.txt) to `out`;
    `shapes` < 3 keeps only the first classes (square, circle) for smaller tests."""
    if not 1 <= shapes <= len(CLASSES) - 1:
        raise ValueError(f"`shapes` must be 1..{len(CLASSES) - 1}. Received: shapes={shapes}.")
    from PIL import Image

    from zoo.tasks.segmentation.masks import write_mask

    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    (out / "classes.txt").write_text("\n".join(CLASSES[: shapes + 1]) + "\n", encoding="utf-8")
    rng = np.random.default_rng(seed)
    for i in range(images):
        image, mask = draw_pair(rng, size=size, max_objects=max_objects, shapes=shapes, min_frac=min_frac,
                                max_frac=max_frac)
        Image.fromarray(image).save(out / "images" / f"{i:06d}.png")
        write_mask(out / "masks" / f"{i:06d}.png", mask)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder (images/ + masks/ + classes.txt)")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=96, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-objects", type=int, default=3)
    parser.add_argument("--shapes", type=int, default=3, help="shape classes: 3 = square, circle, triangle")
    args = parser.parse_args()
    path = make_shapes(args.out, images=args.images, size=args.size, seed=args.seed, max_objects=args.max_objects,
                       shapes=args.shapes)
    print(f"wrote {args.images} image/mask pairs to {path}")


if __name__ == "__main__":
    main()
