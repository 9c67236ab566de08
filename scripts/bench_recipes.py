"""zoo's default fine-tuning recipe against two anchors, on the same data, epochs and model.

Recipes (all run by zoo.finetune, so data reading, augmentation, model and evaluation are identical;
only stages, learning rates, schedule, batch size and regularisation differ):
  zoo     -- the defaults, nothing passed but the epochs.
  zoo_find -- the defaults with `lr="find"` (`--lr find`): does the LR range test pay? (not in the
             default --recipes; with fewer than 10 batches of training images it is the default.)
  keras   -- the Keras transfer-learning guide (keras.io/guides/transfer_learning): base frozen (batch
             norm in inference mode), Adam at a constant 1e-3, then everything at a constant 1e-5;
             two thirds of the epochs for the head; batch 32, no label smoothing. From scratch: Adam 1e-3.
  fastai  -- fastai's `fine_tune`: one frozen epoch of one-cycle at 2e-3, then all layers one-cycle with
             discriminative rates from 2e-3/100 (bottom) to 2e-3/2 (top), batch norm trained, AdamW
             wd 0.01, batch 64. From scratch: `fit_one_cycle(epochs, 1e-3)`.
Data sets, all made offline:
  colours -- 3 trivially separable colour classes, 64 px PNGs; lenet5 (its default weights,
             fashion_mnist); scored on fresh images (another seed).
  digits  -- scikit-learn's handwritten digits upscaled to 32 px; lenet5 from fashion_mnist; scored on
             the last 297 digits (never trained on). At most ~150 per class exist before them.
  fashion -- Fashion-MNIST subsets (/usr/share/datasets/fashion-mnist, Debian's dataset-fashion-mnist),
             resnet18 from scratch at 32 px; scored on 50 test images per class.
  shapes  -- domain shift: resnet18 pretrained here (once, cached in --work) on 4 shapes in warm colours
             on dark backgrounds, fine-tuned on 4 other shapes in cool colours on light backgrounds; 32 px.
Sizes: images per class in DATA (20% of them become the validation split).

    python scripts/bench_recipes.py                                  # the whole table (hours on 2 cores)
    python scripts/bench_recipes.py --quick                          # 20 per class, seed 0
    python scripts/bench_recipes.py --datasets colours,digits --sizes 20,100 --seeds 0,1,2

Results go to --work/results.jsonl one run per line (a rerun skips the runs already there), and the
table (mean and spread over seeds) is printed as Markdown.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's data makers: one copy of each
import zoo  # noqa: E402,F401  before TensorFlow: zoo's TensorFlow settings (zoo.tf_settings) apply only then

from helpers import write_colours, write_digits  # noqa: E402

DATASETS = ("colours", "digits", "fashion", "shapes")
RECIPES = ("zoo", "keras", "fastai")
EXTRA_RECIPES = ("zoo_find",)
FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_LABELS = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")


def recipe_options(recipe: str, epochs: int, *, pretrained: bool) -> dict:
    if recipe == "zoo":
        return {}
    if recipe == "zoo_find":
        return {"lr": "find"}
    if recipe == "keras":
        common = dict(optimizer="adamw", weight_decay=0.0, schedule="constant", label_smoothing=0.0, batch_size=32,
                      early_stopping=None)
        if not pretrained:
            return dict(common, lr=1e-3)
        return dict(common, lr=1e-3, head_epochs=max(1, round(epochs * 2 / 3)), finetune_lr=1e-5, layer_decay=1.0,
                    bn="frozen", dropout=0.2)
    if recipe == "fastai":
        common = dict(optimizer="adamw", weight_decay=0.01, schedule="onecycle", warmup=0.25, label_smoothing=0.0,
                      batch_size=64, early_stopping=None)
        if not pretrained:
            return dict(common, lr=1e-3)
        return dict(common, lr=2e-3, head_epochs=1, finetune_lr=1e-3, layer_decay=None, bn="train")
    raise ValueError(recipe)


# --------------------------------------------------------------------------- data


def make_colours(work: Path, n: int) -> tuple[Path, Path]:
    train = work / f"colours_{n}"
    if not train.exists():
        write_colours(train, per_class=n, seed=0)
    test = work / "colours_test"
    if not test.exists():
        write_colours(test, per_class=20, seed=1)
    return train, test


def make_digits(work: Path, n: int) -> tuple[Path, Path]:
    train = work / f"digits_{n}"
    if not train.exists():
        # the first n of each digit (at most those before index 1500) ...
        write_digits(train, per_class=n, classes=range(10), limit=1500)
    test = work / "digits_test"
    if not test.exists():
        write_digits(test, offset=1500)  # ... and the last 297 digits to score
    return train, test


def _idx(name: str) -> np.ndarray:
    with gzip.open(FASHION / name) as fh:
        data = fh.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def _write_fashion(root: Path, images: np.ndarray, labels: np.ndarray, per_class: int) -> None:
    from PIL import Image

    for k, name in enumerate(FASHION_LABELS):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(labels == k)[:per_class]:
            Image.fromarray(images[i]).save(folder / f"{i}.png")


def make_fashion(work: Path, n: int) -> tuple[Path, Path]:
    if not FASHION.exists():
        raise SystemExit(f"{FASHION} is missing: apt-get install dataset-fashion-mnist")
    train = work / f"fashion_{n}"
    if not train.exists():
        _write_fashion(train, _idx("train-images-idx3-ubyte.gz"), _idx("train-labels-idx1-ubyte.gz"), n)
    test = work / "fashion_test"
    if not test.exists():
        _write_fashion(test, _idx("t10k-images-idx3-ubyte.gz"), _idx("t10k-labels-idx1-ubyte.gz"), 50)
    return train, test


SOURCE_SHAPES = ("circle", "square", "triangle", "cross")
TARGET_SHAPES = ("ring", "diamond", "bar", "star")


def _draw(shape: str, rng: np.random.Generator, size: int, *, warm: bool):
    from PIL import Image, ImageDraw

    bg = tuple(int(v) for v in (rng.integers(0, 70, 3) if warm else rng.integers(180, 256, 3)))
    fg = (int(rng.integers(180, 256)), int(rng.integers(60, 200)), int(rng.integers(0, 60))) if warm else \
        (int(rng.integers(0, 60)), int(rng.integers(60, 200)), int(rng.integers(150, 256)))
    im = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(im)
    r = rng.uniform(0.22, 0.38) * size
    cx, cy = rng.uniform(r, size - r, 2)
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif shape == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif shape == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    elif shape == "cross":
        w = r / 3
        d.rectangle([cx - r, cy - w, cx + r, cy + w], fill=fg)
        d.rectangle([cx - w, cy - r, cx + w, cy + r], fill=fg)
    elif shape == "ring":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fg, width=max(2, int(r / 3)))
    elif shape == "diamond":
        d.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fg)
    elif shape == "bar":
        w = r / 3
        d.rectangle([cx - r, cy - w, cx + r, cy + w], fill=fg)
    elif shape == "star":
        pts = []
        for i in range(10):
            rad = r if i % 2 == 0 else r * 0.45
            a = np.pi / 2 + i * np.pi / 5
            pts.append((cx + rad * np.cos(a), cy - rad * np.sin(a)))
        d.polygon(pts, fill=fg)
    pixels = np.asarray(im, np.float32) + rng.normal(0, 10, (size, size, 3))
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def _write_shapes(root: Path, shapes, n: int, *, warm: bool, seed: int, size: int = 32) -> Path:
    rng = np.random.default_rng(seed)
    for shape in shapes:
        (root / shape).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            _draw(shape, rng, size, warm=warm).save(root / shape / f"{i}.png")
    return root


def make_shapes(work: Path, n: int) -> tuple[Path, Path]:
    train = work / f"shapes_{n}"
    if not train.exists():
        _write_shapes(train, TARGET_SHAPES, n, warm=False, seed=10)
    test = work / "shapes_test"
    if not test.exists():
        _write_shapes(test, TARGET_SHAPES, 50, warm=False, seed=11)
    return train, test


def shapes_source_model(work: Path) -> Path:
    """resnet18 trained from scratch on the source shapes (once; reused by every run)."""

    out = work / "shapes_source_model"
    if not (out / "model.keras").exists():
        data = _write_shapes(work / "shapes_source", SOURCE_SHAPES, 150, warm=True, seed=0)
        zoo.finetune("resnet18", data, out=out, weights=None, image_size=32, epochs=10, verbose=0, overwrite=True)
        print(f"source model: {json.loads((out / 'metadata.json').read_text())['metrics']['accuracy']:.3f} "
              f"on its own validation split", flush=True)
    return out


# --------------------------------------------------------------------------- runs


def setting(dataset: str, work: Path) -> tuple[str, dict, bool]:
    """(model, its options, pretrained?) of a data set."""
    if dataset in ("colours", "digits"):
        return "lenet5", {"weights": "fashion_mnist"}, True
    if dataset == "fashion":
        return "resnet18", {"weights": None, "image_size": 32}, False
    return str(shapes_source_model(work)), {}, True


def run_one(dataset: str, n: int, recipe: str, seed: int, *, epochs: int, work: Path) -> dict:
    import keras

    train, test = {"colours": make_colours, "digits": make_digits, "fashion": make_fashion,
                   "shapes": make_shapes}[dataset](work, n)
    model, model_options, pretrained = setting(dataset, work)
    options = {**model_options, **recipe_options(recipe, epochs, pretrained=pretrained)}
    out = work / "runs" / f"{dataset}_{n}_{recipe}_{seed}"
    t0 = time.time()
    zoo.finetune(model, train, out=out, epochs=epochs, seed=seed, verbose=0, overwrite=True, **options)
    seconds = time.time() - t0
    accuracy = zoo.evaluate(out, test)["accuracy"]
    keras.backend.clear_session()
    from tensorflow.python.util import _pywrap_util_port

    # oneDNN changes the seconds (zoo turns it on since 2026-11-30; rows without the key ran without it)
    return {"dataset": dataset, "per_class": n, "recipe": recipe, "seed": seed, "epochs": epochs,
            "accuracy": round(float(accuracy), 4), "seconds": round(seconds, 1),
            "onednn": bool(_pywrap_util_port.IsMklEnabled())}


def table(rows: list[dict]) -> str:
    cells: dict[tuple, dict[str, list[float]]] = {}
    for r in rows:
        cells.setdefault((r["dataset"], r["per_class"]), {}).setdefault(r["recipe"], []).append(r["accuracy"])
    recipes = RECIPES + tuple(r for r in EXTRA_RECIPES if any(row["recipe"] == r for row in rows))
    lines = ["| data | per class | " + " | ".join(recipes) + " | seeds |", "|---|---|" + "---|" * len(recipes) + "---|"]
    for (dataset, n), by in sorted(cells.items(), key=lambda kv: (DATASETS.index(kv[0][0]), kv[0][1])):
        parts = []
        for recipe in recipes:
            acc = by.get(recipe)
            if not acc:
                parts.append("-")
            elif len(acc) == 1:
                parts.append(f"{acc[0]:.3f}")
            else:
                parts.append(f"{statistics.mean(acc):.3f} ± {statistics.stdev(acc):.3f}")
        seeds = max(len(v) for v in by.values())
        lines.append(f"| {dataset} | {n} | " + " | ".join(parts) + f" | {seeds} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--sizes", default="20,100,1000", help="images per class")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--work", default="bench_recipes", help="data, runs and results.jsonl")
    parser.add_argument("--quick", action="store_true", help="20 per class, seed 0")
    parser.add_argument("--table", action="store_true", help="only print the table of the results so far")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.seeds = "20", "0"
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    results = work / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    if not args.table:
        done = {(r["dataset"], r["per_class"], r["recipe"], r["seed"], r["epochs"]) for r in rows}
        for dataset in args.datasets.split(","):
            for n in (int(s) for s in args.sizes.split(",")):
                for seed in (int(s) for s in args.seeds.split(",")):
                    for recipe in args.recipes.split(","):
                        if (dataset, n, recipe, seed, args.epochs) in done:
                            continue
                        row = run_one(dataset, n, recipe, seed, epochs=args.epochs, work=work)
                        print(json.dumps(row), flush=True)
                        rows.append(row)
                        with results.open("a") as fh:
                            fh.write(json.dumps(row) + "\n")
    print(table([r for r in rows if r["epochs"] == args.epochs]))


if __name__ == "__main__":
    main()
