"""Captioning learning check: Show and Tell from scratch on synthetic shapes, scored on held-out images.

    python scripts/caption_learning.py [--count 400] [--size 96] [--backbone tiny] [--epochs 30]

Makes the shapes data (scripts/make_shapes_captions.py): COUNT training images (seed S) and a
held-out test set of COUNT/4 images (seed S + 1000). Trains with `zoo.finetune` (whole model,
no pretrained weights) and prints BLEU-1..4, CIDEr and the exact-match rate of greedy and
beam-search captions on the test set, next to the best constant caption (the training caption
that scores the highest BLEU-4 when given to every training image). The CI version of this check is
tests/test_show_and_tell_learning.py (smaller data, same path).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def constant_baseline(train_dir: Path, test_dir: Path) -> dict:
    """Scores on the test set of the best constant caption: the training caption with the highest
    BLEU-4 when given to every training image (chosen on training data, like any trained model)."""
    from zoo.tasks.captioning.data import read_captions
    from zoo.tasks.captioning.metrics import caption_metrics
    from zoo.tasks.captioning.text import tokenize

    train_refs = [[tokenize(c) for c in caps] for _, caps in read_captions(train_dir).items]
    test_refs = [[tokenize(c) for c in caps] for _, caps in read_captions(test_dir).items]
    candidates = sorted({" ".join(r) for refs in train_refs for r in refs})
    best = max(candidates, key=lambda c: caption_metrics(train_refs, [c.split()] * len(train_refs))["bleu4"])
    return {"caption": best, **caption_metrics(test_refs, [best.split()] * len(test_refs))}


def run(root: Path, *, count: int, size: int, backbone: str = "tiny", epochs: int = 30, lr: float = 3e-3,
        batch_size: int = 32, seed: int = 0, colours: int = 4, shapes: int = 3, relations: int = 4,
        task_options: dict | None = None, verbose: int = 2) -> dict:
    """Make data in `root`, train into root/model, and return the test scores (see the module docstring)."""
    import zoo
    from make_shapes_captions import make
    from zoo.tasks.captioning import TASK

    shape_options = {"colours": colours, "shapes": shapes, "relations": relations}
    make(root / "train", count=count, size=size, seed=seed, **shape_options)
    make(root / "test", count=max(count // 4, 20), size=size, seed=seed + 1000, **shape_options)
    options = {"min_count": 1, "embed_dim": 128, "units": 256, "dropout": 0.2, "pooling": "flatten",
               "tiny_width": 16 if size <= 64 else 32, **(task_options or {})}
    t0 = time.perf_counter()
    model = zoo.finetune("show_and_tell", root / "train", out=root / "model", backbone=backbone, image_size=size,
                         weights="none", epochs=epochs, lr=lr, batch_size=batch_size, early_stopping=None,
                         weight_decay=0.0, augment="none", seed=seed, verbose=verbose, task_options=options)
    seconds = time.perf_counter() - t0
    del model
    loaded = zoo.load_model(root / "model")
    from zoo.modeldir import get_meta

    meta = get_meta(loaded)
    result = {"train_seconds": round(seconds, 1), "vocabulary": len(meta["vocabulary"])}
    for beam in (1, 3):
        scores = TASK.evaluate(loaded, meta, root / "test", {"beam_size": beam})
        result[f"beam{beam}"] = {k: scores[k] for k in ("bleu1", "bleu2", "bleu3", "bleu4", "cider", "exact", "num_images")}
    result["constant"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in
                          constant_baseline(root / "train", root / "test").items()}
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=400)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--backbone", default="tiny")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--colours", type=int, default=4)
    p.add_argument("--shapes", type=int, default=3)
    p.add_argument("--relations", type=int, default=4)
    p.add_argument("--opt", action="append", default=[], help="task option key=value (e.g. units=512)")
    p.add_argument("--keep", type=Path, default=None, help="write the data and model here instead of a temp folder")
    args = p.parse_args(argv)
    task_options = dict(o.split("=", 1) for o in args.opt)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        result = run(root, count=args.count, size=args.size, backbone=args.backbone, epochs=args.epochs, lr=args.lr,
                     batch_size=args.batch_size, seed=args.seed, colours=args.colours, shapes=args.shapes,
                     relations=args.relations, task_options=task_options)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
