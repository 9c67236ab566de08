"""How close `zoo.predict` from JPEG files comes to the model's pure forward throughput.

    python scripts/bench_predict.py [--model resnet18] [--images 256] [--batch-size 32] [--size 400x300]

1. writes N JPEG photos-like images (smooth colour fields with texture, SIZE pixels) to a temp folder;
2. forward: the same compiled forward function zoo.predict uses, on already decoded and resized
   uint8 batches in memory (no decoding, no resizing, no files);
3. predict: zoo.predict on the JPEG files (decode + resize in threads, overlapped with the forward);
and prints both throughputs and predict / forward (target >= 0.85). Both are timed after a
warm-up run, so tracing is not counted. Random weights: speed does not depend on them.
The CPU is shared, so figures vary from run to run; run it more than once.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def make_jpegs(folder: Path, count: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    paths = []
    for i in range(count):
        base = rng.uniform(0, 255, 3)
        slope = rng.uniform(-0.5, 0.5, (2, 3))
        image = base + xx[..., None] * slope[0] + yy[..., None] * slope[1] + rng.normal(0, 12, (height, width, 3))
        path = folder / f"img{i:05d}.jpg"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def forward_throughput(run, batch: np.ndarray, images: int) -> float:
    steps = max(1, images // batch.shape[0])
    run(batch)  # warm-up (traced already, but first calls allocate)
    start = time.perf_counter()
    for _ in range(steps):
        run(batch)
    return steps * batch.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", default="400x300", help="JPEG size WIDTHxHEIGHT")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))

    import zoo
    from zoo.data.images import decode_image
    from zoo.inference import input_size, make_forward
    from zoo.modeldir import get_meta
    from zoo.training.task import get_task

    model = zoo.build(args.model, weights=None)
    meta = get_meta(model)
    height, width, channels = input_size(model, meta)
    meta = {**meta, "input_shape": [height, width, channels]}
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        paths = make_jpegs(Path(tmp), args.images, size)
        task = get_task(meta.get("task") or "classification")
        decoded = [task.prepare(decode_image(p, channels=channels), meta)[0] for p in paths[: args.batch_size]]
        batch = np.stack(decoded)
        run = make_forward(model, meta)
        sources = [str(p) for p in paths]
        zoo.predict(sources[: args.batch_size * 2], model=model, batch_size=args.batch_size)  # warm-up: tracing

        fwd = forward_throughput(run, batch, args.images)
        start = time.perf_counter()
        records = zoo.predict(sources, model=model, batch_size=args.batch_size, workers=args.workers)
        pred = len(records) / (time.perf_counter() - start)
        fwd_after = forward_throughput(run, batch, args.images)  # the machine is shared: bracket predict
    assert all(r["ok"] for r in records)
    forward = (fwd + fwd_after) / 2
    print(f"model {args.model} at {height}x{width}, batch {args.batch_size}, {args.images} JPEGs of {size[0]}x{size[1]}, "
          f"{os.cpu_count()} CPUs")
    print(f"forward on decoded tensors: {forward:.1f} img/s (runs: {fwd:.1f}, {fwd_after:.1f})")
    print(f"zoo.predict from JPEG files: {pred:.1f} img/s")
    print(f"ratio predict / forward: {pred / forward:.2f} (target >= 0.85)")


if __name__ == "__main__":
    main()
