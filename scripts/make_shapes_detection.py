"""Synthetic detection data: coloured squares, circles and triangles with exact boxes, VOC layout.

    python scripts/make_shapes_detection.py --out data/shapes_train --images 240 --size 224 --seed 0
    python scripts/make_shapes_detection.py --out data/shapes_val --images 60 --size 224 --seed 1

Writes OUT/Annotations/NNNNNN.xml and OUT/JPEGImages/NNNNNN.jpg. Each image has a random plain
background and 1..--max-objects shapes of random colours (the colour never tells the class, the
shape does), each 12%..40% of the side, overlapping another by at most 0.2 IoU. The same seed
always gives the same files. Boxes are (xmin, ymin, xmax, ymax) in pixels, xmax/ymax exclusive.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

CLASSES = ("square", "circle", "triangle")


def _iou(a, b) -> float:
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def _colour(rng, away_from) -> tuple[int, int, int]:
    """A random colour at least 120 away (L1) from the background, so every shape is visible."""
    while True:
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        if sum(abs(a - b) for a, b in zip(c, away_from)) > 120:
            return c


def draw_image(rng: np.random.Generator, *, size: int, max_objects: int):
    """One image (PIL) and its objects [(class name, (x0, y0, x1, y1))]."""
    from PIL import Image, ImageDraw

    background = tuple(int(v) for v in rng.integers(0, 256, 3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    objects: list[tuple[str, tuple[int, int, int, int]]] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            side = int(rng.integers(int(0.12 * size), int(0.40 * size) + 1))
            x0 = int(rng.integers(0, size - side + 1))
            y0 = int(rng.integers(0, size - side + 1))
            box = (x0, y0, x0 + side, y0 + side)
            if all(_iou(box, other) <= 0.2 for _, other in objects):
                break
        else:
            continue
        name = CLASSES[int(rng.integers(len(CLASSES)))]
        colour = _colour(rng, background)
        x1, y1 = box[2] - 1, box[3] - 1  # PIL's coordinates are inclusive
        if name == "square":
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        elif name == "circle":
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) / 2, y0)], fill=colour)
        objects.append((name, box))
    return image, objects


def voc_xml(filename: str, size: int, objects) -> str:
    rows = "".join(
        f"  <object><name>{escape(name)}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>0</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
        f"<ymax>{b[3]}</ymax></bndbox></object>\n"
        for name, b in objects
    )
    return (f"<annotation>\n  <folder>JPEGImages</folder><filename>{escape(filename)}</filename>\n"
            f"  <size><width>{size}</width><height>{size}</height><depth>3</depth></size>\n{rows}</annotation>\n")


def make_shapes(out: str | Path, *, images: int = 240, size: int = 224, seed: int = 0, max_objects: int = 3) -> Path:
    """Write a seeded synthetic VOC dataset to `out` and return its path."""
    out = Path(out)
    (out / "Annotations").mkdir(parents=True, exist_ok=True)
    (out / "JPEGImages").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(images):
        image, objects = draw_image(rng, size=size, max_objects=max_objects)
        stem = f"{i:06d}"
        image.save(out / "JPEGImages" / f"{stem}.jpg", quality=95)
        (out / "Annotations" / f"{stem}.xml").write_text(voc_xml(f"{stem}.jpg", size, objects), encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder (VOC layout)")
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--size", type=int, default=224, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-objects", type=int, default=3)
    args = parser.parse_args()
    path = make_shapes(args.out, images=args.images, size=args.size, seed=args.seed, max_objects=args.max_objects)
    print(f"wrote {args.images} images to {path}")


if __name__ == "__main__":
    main()
