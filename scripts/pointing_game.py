"""Measured check of zoo explain: the pointing game on one-shape-per-image synthetic data.

    python scripts/pointing_game.py --out runs/pointing --images 400 --size 128 --epochs 15 --batch-size 16

1. Data: seeded images from scripts/make_shapes_pointing.py, one shape each (class = the shape:
   square, circle, triangle; colours never tell the class) on a noisy background with faint lines
   as clutter, the box of every shape known. --images go to class folders for training (a fifth
   of them validate); --test-images (60) are held out with their boxes.
2. Model: resnet18 trained from scratch at --size px with `zoo.finetune` (skipped when
   OUT/model already holds a model, so the measurement can be re-run alone).
3. For every method of zoo.explain: the pointing game (Zhang et al. 2016): the map's peak inside
   the shape's box, explaining the true class of each held-out image, strict and with the paper's
   15 px tolerance; next to it the chance level of a uniformly random point (exact expectation and
   one draw) and the centre point; and the mean Spearman correlation of the model-randomisation
   sanity check (Adebayo et al. 2018; low = the maps depend on the learned weights).
4. Time: median seconds per image of `zoo.predict` and of Grad-CAM `zoo.explain` (heatmap PNG
   written), one image per call, on the loaded model after a warm-up.

Prints a Markdown table and writes OUT/pointing.json. Runs unattended; threads are limited by
the usual TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from pathlib import Path

def _shapes():
    path = Path(__file__).with_name("make_shapes_pointing.py")
    spec = importlib.util.spec_from_file_location("make_shapes_pointing", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train(data: Path, out: Path, *, size: int, epochs: int, batch_size: int, lr: float, seed: int) -> float:
    import zoo

    start = time.perf_counter()
    zoo.finetune("resnet18", data, out=out, epochs=epochs, weights=None, image_size=size, batch_size=batch_size,
                 lr=lr, seed=seed, early_stopping=None, verbose=2)
    return time.perf_counter() - start


def measure(model_dir: Path, test: list[dict], *, methods: list[str], seed: int, work: Path) -> dict:
    import numpy as np

    import zoo
    from zoo.explaining.pointing import chance_level, pointing_game, random_points

    model = zoo.load_model(model_dir)
    paths = [t["path"] for t in test]
    boxes = [t["box"] for t in test]
    sizes = [t["size"] for t in test]
    predictions = zoo.predict(paths, model=model, top_k=1)
    accuracy = float(np.mean([p["predictions"][0]["label"] == t["label"] for p, t in zip(predictions, test)]))
    rows = []
    for method in methods:
        start = time.perf_counter()
        peaks: dict[str, list[int]] = {}
        correlations = []
        for label in _shapes().CLASSES:  # the true class of each image is explained, as in Zhang et al.
            group = [t["path"] for t in test if t["label"] == label]
            for record in zoo.explain(group, model=model, method=method, target=label, sanity=True, batch_size=16):
                if not record["ok"]:
                    raise SystemExit(f"{method}: {record['source']}: {record['error']}")
                peaks[record["source"]] = record["peak"]
                correlations.append(record["sanity"])
        points = [peaks[p] for p in paths]
        valid = [c for c in correlations if c is not None]
        rows.append({"method": method, "pointing": pointing_game(points, boxes),
                     "pointing_15px": pointing_game(points, boxes, tolerance=15),
                     "sanity_spearman": float(np.mean(valid)) if valid else None,
                     "seconds": round(time.perf_counter() - start, 1)})
        print(json.dumps(rows[-1]), flush=True)
    centre = [[w // 2, h // 2] for w, h in sizes]
    baselines = {"chance_expected": chance_level(boxes, sizes),
                 "random_point": pointing_game(random_points(sizes, seed=seed), boxes),
                 "random_point_15px": pointing_game(random_points(sizes, seed=seed), boxes, tolerance=15),
                 "centre_point": pointing_game(centre, boxes),
                 "centre_point_15px": pointing_game(centre, boxes, tolerance=15)}
    return {"accuracy": accuracy, "rows": rows, "baselines": baselines, "timing": timing(model, paths, work)}


def timing(model, paths: list[str], work: Path) -> dict:
    """Median seconds per image, one image per call, after one warm-up call each."""
    import zoo

    out = work / "timing_heatmaps"
    zoo.predict(paths[:1], model=model)
    zoo.explain(paths[:1], model=model, save_dir=out)
    predict, explain = [], []
    for path in paths:
        start = time.perf_counter()
        zoo.predict([path], model=model)
        predict.append(time.perf_counter() - start)
        start = time.perf_counter()
        zoo.explain([path], model=model, save_dir=out)
        explain.append(time.perf_counter() - start)
    p, e = statistics.median(predict), statistics.median(explain)
    return {"predict_s": round(p, 4), "gradcam_s": round(e, 4), "ratio": round(e / p, 2)}


def table(result: dict) -> str:
    b = result["baselines"]
    lines = ["| method | pointing game | within 15 px | sanity: Spearman trained vs re-initialised top |",
             "|---|---|---|---|"]
    for row in result["rows"]:
        rho = "n/a" if row["sanity_spearman"] is None else f"{row['sanity_spearman']:.2f}"
        lines.append(f"| {row['method']} | {row['pointing']:.2f} | {row['pointing_15px']:.2f} | {rho} |")
    lines.append(f"| random point (expected / one draw) | {b['chance_expected']:.2f} / {b['random_point']:.2f} | "
                 f"{b['random_point_15px']:.2f} | - |")
    lines.append(f"| image centre | {b['centre_point']:.2f} | {b['centre_point_15px']:.2f} | - |")
    t = result["timing"]
    lines.append("")
    lines.append(f"Held-out accuracy {result['accuracy']:.2f}. Per image: predict {t['predict_s'] * 1000:.0f} ms, "
                 f"Grad-CAM explain {t['gradcam_s'] * 1000:.0f} ms ({t['ratio']:.2f}x).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/pointing"))
    parser.add_argument("--images", type=int, default=400, help="training images (20%% of them validate)")
    parser.add_argument("--test-images", type=int, default=60)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default="gradcam,gradcam++,saliency,smoothgrad,integrated-gradients")
    args = parser.parse_args()

    data_root = args.out / "data"
    model_dir = args.out / "model"
    train_dir, test = _shapes().make_folders(data_root, images=args.images, test_images=args.test_images,
                                             size=args.size, seed=args.seed)
    train_seconds = None
    if not (model_dir / "model.keras").exists():
        train_seconds = train(train_dir, model_dir, size=args.size, epochs=args.epochs, batch_size=args.batch_size,
                              lr=args.lr, seed=args.seed)
    result = measure(model_dir, test, methods=args.methods.split(","), seed=args.seed, work=args.out)
    result.update(train_seconds=train_seconds, args={k: str(v) for k, v in vars(args).items()})
    (args.out / "pointing.json").write_text(json.dumps(result, indent=1))
    print(table(result))


if __name__ == "__main__":
    main()
