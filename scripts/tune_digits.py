"""zoo tune measured: lenet5 (Fashion-MNIST weights) on scikit-learn's digits, a search against a default
zoo finetune at the same epochs, and the same trials on 2 workers against 1.

The digits (1,797 images, built as tests/helpers.py builds them) are split by index into DATA, on
which every run trains (each trial splits it again, 80/20, for the validation score it is selected
on), and two held-out sets only used to score the chosen models: `held_out`, every 5th image of the
first 80% (the same writers as DATA: an i.i.d. hold-out), and `other_writers`, the last 20% (scikit-
learn's digits are ordered by writer, so these are people none of the training images came from).

Digits are not mirror-symmetric (a flipped 2 is no 2), so the search fixes augment=none, the one
piece of knowledge about the data it is given (--space); the default zoo finetune is measured both
as it is and with that same option, so that the search is compared with what the user knew.

    nice python scripts/tune_digits.py                        # 6 trials, 4 epochs, 2 workers then 1
    python scripts/tune_digits.py --trials 6 --epochs 4 --workers 2 --space augment=none --json results.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def split_digits(root: Path) -> tuple[Path, dict[str, Path]]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from helpers import write_digits

    everything = write_digits(root / "train")
    files = sorted(everything.glob("*/*.png"), key=lambda p: int(p.stem))
    cut = int(len(files) * 0.8)
    moves = [(p, "other_writers") for p in files[cut:]] + [(p, "held_out") for p in files[:cut][4::5]]
    for path, name in moves:  # never seen by a search or a fine-tuning
        target = root / name / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
    return root / "train", {"held_out": root / "held_out", "other_writers": root / "other_writers"}


def scores(zoo, model_dir, tests: dict[str, Path]) -> dict[str, float]:
    return {f"{name}_accuracy": zoo.evaluate(model_dir, folder)["accuracy"] for name, folder in tests.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--space", nargs="*", default=["augment=none"], help="KEY=VALUES overriding the default space.")
    parser.add_argument("--work", default=None, help="Folder for data and runs (default: a temporary one).")
    parser.add_argument("--json", default=None, help="Also write the results here.")
    args = parser.parse_args()

    import zoo

    work = Path(args.work or tempfile.mkdtemp(prefix="tune-digits-"))
    train, tests = split_digits(work)
    counts = {name: sum(1 for _ in folder.glob("*/*.png")) for name, folder in {"data": train, **tests}.items()}
    print(f"images: {counts}; work in {work}", flush=True)
    results: dict = {"model": args.model, "trials": args.trials, "epochs": args.epochs,
                     "cpus": len(os.sched_getaffinity(0)), "load_before": os.getloadavg()[0]}

    from zoo.training.tune_space import parse_space_args

    space = parse_space_args(args.space) if args.space else None
    fixed = {k: v for k, v in (space or {}).items() if "," not in v and ":" not in v}
    results["space"] = space
    for name, options in (("default", {}), ("default_fixed", fixed)):
        if name == "default_fixed" and not fixed:
            continue
        t0 = time.time()
        zoo.finetune(args.model, train, out=work / name, epochs=args.epochs, verbose=0, **options)
        meta = json.loads((work / name / "metadata.json").read_text())
        results[name] = {"seconds": round(time.time() - t0, 1), "val_accuracy": meta["metrics"]["accuracy"],
                         "weights": meta["weights"]["origin"], "options": options,
                         **scores(zoo, work / name, tests)}
        print(f"{name} finetune:", results[name], flush=True)

    for workers in (args.workers, 1):
        out = work / f"search_{workers}w"
        t0 = time.time()
        found = zoo.tune(args.model, train, out=out, trials=args.trials, workers=workers, epochs=args.epochs,
                         space=space)
        seconds = time.time() - t0
        best = found["best"]
        results[f"{workers}_workers"] = {
            "seconds": round(seconds, 1), "best_trial": best["trial"], "val_accuracy": best["score"],
            **scores(zoo, best["model_dir"], tests), "options": best["options"],
            "failed": sum(1 for r in found["trials"] if r["status"] != "completed"),
            "trial_seconds": round(sum(float(r["finished"]) - float(r["started"]) for r in found["trials"]), 1)}
        print(f"{workers} worker(s):", results[f"{workers}_workers"], flush=True)
    results["load_after"] = os.getloadavg()[0]
    many, one = results[f"{args.workers}_workers"], results["1_workers"]
    results["speedup"] = round(one["seconds"] / many["seconds"], 2)

    print()
    print("| run | wall time | val accuracy | held-out accuracy | other writers' accuracy |")
    print("|---|---|---|---|---|")
    for name in ("default", "default_fixed"):
        if name in results:
            d = results[name]
            flags = "".join(f" --{k.replace('_', '-')} {v}" for k, v in d["options"].items())
            print(f"| `zoo finetune --epochs {args.epochs}{flags}` | {d['seconds']:.0f} s | {d['val_accuracy']:.4f} | "
                  f"{d['held_out_accuracy']:.4f} | {d['other_writers_accuracy']:.4f} |")
    for workers in (args.workers, 1):
        r = results[f"{workers}_workers"]
        print(f"| `zoo tune`, {args.trials} trials x {args.epochs} epochs, {workers} worker{'s' * (workers > 1)} "
              f"(best: trial {r['best_trial']}) | {r['seconds']:.0f} s | {r['val_accuracy']:.4f} | "
              f"{r['held_out_accuracy']:.4f} | {r['other_writers_accuracy']:.4f} |")
    print(f"\nspeed-up {args.workers} workers vs 1: {results['speedup']}x "
          f"(load average {results['load_before']:.1f} -> {results['load_after']:.1f} on {results['cpus']} CPUs)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
