"""Show, Attend and Tell next to Show and Tell on synthetic shapes, and where its attention points.

    nice -n 19 python scripts/caption_attention.py --out runs/attention [--count 400] [--held-out 50]
        [--size 96] [--backbone resnet18] [--epochs 40] [--figure docs/show_attend_tell_shapes.png]

Makes the shapes data (scripts/make_shapes_captions.py: COUNT training images with seed S and
HELD_OUT new images with seed S + 1000), trains both captioners from scratch with `zoo.finetune`
on the same data (same backbone, image size, epochs, learning rate, embedding and LSTM sizes), and
reports on the held-out images:
  * BLEU-1..4 (equal to nltk's corpus_bleu), CIDEr-D and exact match of greedy and beam-3 captions
    (zoo's captioning evaluate), and of the best constant caption (scripts/caption_learning.py);
  * for the attention model, the pointing score: for every shape word ("circle", "square",
    "triangle") of a generated caption (default decoding, as `zoo predict` gives), is that word's
    attention peak (the record's "peak", in image pixels) inside the box of an object of that
    shape? Chance is the hit rate of a random point: the share of the image those boxes cover
    (0 when the caption names a shape the image lacks, as for the model).
Object boxes come from the pixels: each object is drawn in one flat colour that the reference
caption names next to its shape. Writes OUT/results.json and, with --figure, a PNG of three
held-out images, once per generated word under its attention. The CI version of this check is
tests/test_show_attend_tell_learning.py (tiny backbone, smaller data).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo  # noqa: E402,F401  before TensorFlow: zoo's TensorFlow settings (zoo.tf_settings) apply only then

ARCHS = ("show_and_tell", "show_attend_tell")
# Sizes shared by both captioners (as scripts/caption_learning.py), then each one's own options:
# Show and Tell keeps where things are by flattening its s32 map; the attention model attends over s16.
# attention_reg 0.1, not the paper's 1: the regulariser asks every cell to be looked at about once
# over the caption, which 9 steps over 36 cells cannot do; at 1 it sends the later words' attention
# to the empty background (pointing 0.18 against 0.40 at 0.1 and 0.24 at 0, on a 48 px variant).
COMMON = {"min_count": 1, "embed_dim": 128, "units": 256, "dropout": 0.2}
OWN = {"show_and_tell": {"pooling": "flatten"},
       "show_attend_tell": {"feature": "s16", "attention_dim": 128, "attention_reg": 0.1}}


def objects(image_path: Path, caption: str) -> list[tuple[str, tuple[int, int, int, int]]]:
    """(shape, box [x0, y0, x1, y1] inclusive) of the two objects of a shapes scene, found by colour."""
    from make_shapes_captions import COLOURS
    from PIL import Image

    from zoo.tasks.captioning.text import tokenize

    words = tokenize(caption)  # "a red circle left of a blue square"
    with Image.open(image_path) as im:
        pixels = np.asarray(im.convert("RGB"))
    found = []
    for colour, shape in ((words[1], words[2]), (words[-2], words[-1])):
        ys, xs = np.nonzero(np.all(pixels == np.array(COLOURS[colour], np.uint8), axis=-1))
        if len(xs):
            found.append((shape, (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))))
    return found


def _inside(point, box) -> bool:
    """Is a peak (x, y) in continuous pixel coordinates inside the pixels x0..x1, y0..y1 of a box?"""
    x, y = point
    return box[0] <= x <= box[2] + 1 and box[1] <= y <= box[3] + 1


def pointing(records: list[dict], items: list[tuple[Path, list[str]]]) -> dict:
    """Pointing score of attention records against the scenes' objects, and its chance level."""
    from make_shapes_captions import SHAPES
    from PIL import Image

    hits, chance, on_any = [], [], []
    for record, (path, captions) in zip(records, items):
        boxes = objects(path, captions[0])
        with Image.open(path) as im:
            width, height = im.size
        for entry in record.get("attention", []):
            if entry["word"] not in SHAPES:
                continue
            mine = [box for shape, box in boxes if shape == entry["word"]]
            hits.append(any(_inside(entry["peak"], box) for box in mine))
            on_any.append(any(_inside(entry["peak"], box) for _, box in boxes))
            cover = np.zeros((height, width), bool)
            for x0, y0, x1, y1 in mine:
                cover[y0 : y1 + 1, x0 : x1 + 1] = True
            chance.append(float(cover.mean()))
    n = len(hits)
    return {"shape_words": n, "score": round(float(np.mean(hits)), 4) if n else 0.0,
            "chance": round(float(np.mean(chance)), 4) if n else 0.0,
            "on_an_object": round(float(np.mean(on_any)), 4) if n else 0.0}


def make_data(root: Path, *, count: int, held_out: int, size: int, seed: int, **shape_options) -> None:
    from make_shapes_captions import make

    for name, n, s in (("train", count, seed), ("test", held_out, seed + 1000)):
        if not (root / name / "captions.txt").is_file():  # seeded: a rerun would write the same files
            make(root / name, count=n, size=size, seed=s, **shape_options)


def train_and_score(arch: str, root: Path, *, size: int, backbone: str, epochs: int, lr: float, batch_size: int,
                    seed: int, task_options: dict, verbose: int = 2) -> dict:
    """Train `arch` on root/train into root/<arch>; its held-out scores (and pointing, for attention)."""
    import keras

    from zoo.modeldir import get_meta
    from zoo.tasks.captioning import TASK
    from zoo.tasks.captioning.data import read_captions

    keras.utils.set_random_seed(seed)
    t0 = time.perf_counter()
    out = root / arch
    result: dict = {"options": task_options}
    if not (out / "model.keras").is_file():
        # A run stopped part-way (the machine is shared; this takes hours) continues from its last epoch.
        checkpoint = out / "checkpoint" / "state.json"
        if checkpoint.is_file():
            result["resumed_after_epoch"] = json.loads(checkpoint.read_text())["epoch"]
        zoo.finetune(arch, root / "train", out=out, backbone=backbone, image_size=size, weights="none", epochs=epochs,
                     lr=lr, batch_size=batch_size, early_stopping=None, weight_decay=0.0, augment="none", seed=seed,
                     verbose=verbose, task_options=task_options, resume=checkpoint.is_file())
    result["train_seconds"] = round(time.perf_counter() - t0, 1)
    model = zoo.load_model(root / arch)
    meta = get_meta(model)
    for beam in (1, 3):
        scores = TASK.evaluate(model, meta, root / "test", {"beam_size": beam})
        result[f"beam{beam}"] = {k: scores[k] for k in ("bleu1", "bleu2", "bleu3", "bleu4", "cider", "exact")}
    items = read_captions(root / "test").items
    records = zoo.predict([str(p) for p, _ in items], model=model)
    result["examples"] = [r["caption"] for r in records[:5]]
    if arch == "show_attend_tell":
        result["pointing"] = pointing(records, items)
    return result


def figure(model_dir: Path, images: list[Path], path: Path) -> Path:
    """Attention figures of `images` (zoo predict --save-dir), stacked into one PNG."""
    import tempfile

    from PIL import Image

    from zoo.files import save_image

    with tempfile.TemporaryDirectory() as tmp:
        zoo.predict([str(p) for p in images], model=str(model_dir), save_dir=tmp)
        panels = [Image.open(Path(tmp) / f"{p.stem}_attention.png").convert("RGB") for p in images]
        sheet = Image.new("RGB", (max(p.width for p in panels), sum(p.height for p in panels)), (255, 255, 255))
        top = 0
        for panel in panels:
            sheet.paste(panel, (0, top))
            top += panel.height
        path.parent.mkdir(parents=True, exist_ok=True)
        return save_image(sheet, path)


def run(root: Path, *, archs=ARCHS, count: int = 400, held_out: int = 50, size: int = 96, backbone: str = "resnet18",
        epochs: int = 40, lr: float = 3e-3, batch_size: int = 32, seed: int = 0, options: dict | None = None,
        shape_options: dict | None = None, verbose: int = 2) -> dict:
    """Data, both captioners, their scores; `options` per arch override COMMON and OWN."""
    from caption_learning import constant_baseline

    make_data(root, count=count, held_out=held_out, size=size, seed=seed, **(shape_options or {}))
    results: dict = {"setup": {"count": count, "held_out": held_out, "size": size, "backbone": backbone,
                               "epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed}}
    for arch in archs:
        task_options = {**COMMON, **OWN[arch], **(options or {}).get(arch, {})}
        results[arch] = train_and_score(arch, root, size=size, backbone=backbone, epochs=epochs, lr=lr,
                                        batch_size=batch_size, seed=seed, task_options=task_options, verbose=verbose)
    constant = constant_baseline(root / "train", root / "test")
    results["constant"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in constant.items()}
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="data, models and results.json go here")
    p.add_argument("--count", type=int, default=400)
    p.add_argument("--held-out", type=int, default=50)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--arch", action="append", choices=ARCHS, help="train only these (default: both)")
    p.add_argument("--figure", type=Path, default=None, help="write the attention figure of 3 held-out images here")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    result = run(args.out, archs=tuple(args.arch or ARCHS), count=args.count, held_out=args.held_out, size=args.size,
                 backbone=args.backbone, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed)
    from zoo.files import write_text

    write_text(args.out / "results.json", json.dumps(result, indent=2) + "\n")
    if args.figure is not None and "show_attend_tell" in result:
        images = sorted((args.out / "test" / "images").glob("*.png"))[:3]
        figure(args.out / "show_attend_tell", images, args.figure)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
