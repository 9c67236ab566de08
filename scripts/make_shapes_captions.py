"""Synthetic captioning data: two coloured shapes per image and templated captions.

    python scripts/make_shapes_captions.py OUT [--count 400] [--size 96] [--seed 0] [--format token|csv|coco]

writes OUT/images/00000.png ... and OUT/captions.txt (Flickr8k token format `name#n<TAB>caption`),
OUT/captions.csv or OUT/captions.json. Each image gets two captions that say the same thing from
both ends ("a red circle left of a blue square" / "a blue square right of a red circle"), so
BLEU has several references, as in Flickr8k and COCO. Seeded: the same arguments give the same files.
Used by the captioning learning tests (tests/test_show_and_tell_learning.py).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import sys
from pathlib import Path

COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (230, 200, 30),
           "purple": (140, 60, 170), "orange": (240, 130, 20)}
SHAPES = ("circle", "square", "triangle")
OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


def _draw(draw, shape: str, box: tuple[float, float, float, float], colour) -> None:
    x0, y0, x1, y1 = box
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=colour)


def scene(rng: random.Random, *, size: int, colours: list[str], shapes: list[str], relations: list[str]):
    """One image (PIL) and its two captions."""
    from PIL import Image, ImageDraw

    relation = rng.choice(relations)
    (c1, s1), (c2, s2) = rng.sample([(c, s) for c in colours for s in shapes], 2)
    side = rng.uniform(0.22, 0.3) * size
    jitter = 0.08 * size
    # The first object sits in the half the relation names; the other one in the opposite half.
    centre = size / 2
    far = rng.uniform(0.22, 0.3) * size
    if relation in ("left of", "right of"):
        sign = -1 if relation == "left of" else 1
        p1 = (centre + sign * far, centre + rng.uniform(-jitter, jitter))
        p2 = (centre - sign * far, centre + rng.uniform(-jitter, jitter))
    else:
        sign = -1 if relation == "above" else 1
        p1 = (centre + rng.uniform(-jitter, jitter), centre + sign * far)
        p2 = (centre + rng.uniform(-jitter, jitter), centre - sign * far)
    shade = rng.randint(225, 250)
    image = Image.new("RGB", (size, size), (shade, shade, shade))
    draw = ImageDraw.Draw(image)
    for (cx, cy), colour, shape in ((p1, c1, s1), (p2, c2, s2)):
        half = side / 2
        _draw(draw, shape, (cx - half, cy - half, cx + half, cy + half), COLOURS[colour])
    captions = [f"a {c1} {s1} {relation} a {c2} {s2}", f"a {c2} {s2} {OPPOSITE[relation]} a {c1} {s1}"]
    return image, captions


def make(out: Path, *, count: int = 400, size: int = 96, seed: int = 0, fmt: str = "token",
         colours: int = 4, shapes: int = 3, relations: int = 4) -> Path:
    """Write the data set to `out` (see the module docstring); returns the captions file."""
    if not 1 <= colours <= len(COLOURS) or not 1 <= shapes <= len(SHAPES) or not 1 <= relations <= 4:
        raise ValueError(f"colours in 1..{len(COLOURS)}, shapes in 1..{len(SHAPES)}, relations in 1..4. "
                         f"Received: colours={colours}, shapes={shapes}, relations={relations}.")
    rng = random.Random(seed)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    names = list(COLOURS)[:colours]
    kinds = list(SHAPES)[:shapes]
    rels = list(OPPOSITE)[:relations]
    rows = []
    for i in range(count):
        image, captions = scene(rng, size=size, colours=names, shapes=kinds, relations=rels)
        name = f"{i:05d}.png"
        image.save(images / name)
        rows.extend((name, caption) for caption in captions)
    if fmt == "token":
        counters: dict[str, int] = {}
        lines = []
        for name, caption in rows:
            n = counters.get(name, 0)
            counters[name] = n + 1
            lines.append(f"{name}#{n}\t{caption}")
        path = out / "captions.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["image", "caption"])
        writer.writerows(rows)
        path = out / "captions.csv"
        path.write_text(buf.getvalue(), encoding="utf-8")
    elif fmt == "coco":
        ids = {name: i + 1 for i, name in enumerate(dict.fromkeys(n for n, _ in rows))}
        doc = {"images": [{"id": i, "file_name": n} for n, i in ids.items()],
               "annotations": [{"id": k + 1, "image_id": ids[n], "caption": c} for k, (n, c) in enumerate(rows)]}
        path = out / "captions.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
    else:
        raise ValueError(f"format must be token, csv or coco. Received: {fmt!r}.")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", dest="fmt", choices=("token", "csv", "coco"), default="token")
    parser.add_argument("--colours", type=int, default=4)
    parser.add_argument("--shapes", type=int, default=3)
    parser.add_argument("--relations", type=int, default=4)
    args = parser.parse_args(argv)
    path = make(args.out, count=args.count, size=args.size, seed=args.seed, fmt=args.fmt, colours=args.colours,
                shapes=args.shapes, relations=args.relations)
    print(f"wrote {args.count} images and {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
