"""Memory under load: `zoo predict` over many small image files must keep a flat RSS.

    python scripts/load_predict.py --count 10000                 # Python API (zoo.inference.iter_predict)
    python scripts/load_predict.py --count 10000 --cli           # the `zoo predict` command

Writes `count` small PNGs (28x28 grayscale, random clothes-like blobs; plus a few broken files so
the error path is exercised too) into a temporary folder, predicts them with lenet5 and the
shipped fashion_mnist weights, samples the resident set size (RSS) as records stream out, and
prints one JSON object: baseline RSS after a warm-up, peak, growth = peak - baseline, and the
records/s. Exit status 1 when growth exceeds --limit-mb (default 200).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def rss_mb(pid: int | str = "self") -> float:
    """Current resident set size in MiB, from /proc (Linux)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def write_images(folder: Path, count: int, *, broken_every: int = 0) -> Path:
    """`count` 28x28 PNGs (every `broken_every`-th one truncated) and a .txt list of them."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:28, :28]
    lines = []
    for i in range(count):
        cy, cx, r = rng.uniform(8, 20), rng.uniform(8, 20), rng.uniform(4, 12)
        blob = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r) * rng.uniform(80, 255)
        pixels = np.clip(blob + rng.normal(0, 10, blob.shape), 0, 255).astype(np.uint8)
        path = folder / f"img_{i:05d}.png"
        Image.fromarray(pixels, "L").save(path)
        if broken_every and i % broken_every == broken_every - 1:
            path.write_bytes(path.read_bytes()[:40])  # truncated: an error record, the run goes on
        lines.append(path.name)
    (folder / "list.txt").write_text("\n".join(lines) + "\n")
    return folder / "list.txt"


def run_api(source: Path, *, count: int, warmup: int, batch_size: int) -> dict:
    from zoo.inference import iter_predict  # zoo.predict as a stream: records are not kept

    samples, baseline, peak, ok, failed = [], None, 0.0, 0, 0
    t0 = time.perf_counter()
    for n, record in enumerate(iter_predict(str(source), model="lenet5", weights="fashion_mnist",
                                                batch_size=batch_size, top_k=1), 1):
        ok += record["ok"]
        failed += not record["ok"]
        if n == warmup:
            baseline = rss_mb()
            t0 = time.perf_counter()
        if n % 250 == 0 or n == count:
            now = rss_mb()
            samples.append((n, round(now, 1)))
            if n >= warmup:
                peak = max(peak, now)
    seconds = time.perf_counter() - t0
    return {"mode": "api", "records": ok + failed, "ok": ok, "failed": failed, "baseline_mb": round(baseline, 1),
            "peak_mb": round(peak, 1), "growth_mb": round(peak - baseline, 1),
            "records_per_s": round((count - warmup) / seconds, 1), "samples": samples}


def run_cli(source: Path, *, count: int, batch_size: int) -> dict:
    """`zoo predict LIST --format jsonl`; RSS of the child sampled from /proc as lines arrive."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.Popen([sys.executable, "-m", "zoo", "predict", str(source), "--model", "lenet5", "--weights",
                             "fashion_mnist", "--format", "jsonl", "--top-k", "1", "--batch-size", str(batch_size)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    samples, baseline, peak, n, ok = [], None, 0.0, 0, 0
    for line in proc.stdout:
        n += 1
        ok += json.loads(line)["ok"]
        if n % 250 == 0:
            now = rss_mb(proc.pid)
            samples.append((n, round(now, 1)))
            baseline = baseline or now
            peak = max(peak, now)
    proc.wait()
    return {"mode": "cli", "records": n, "ok": ok, "failed": n - ok, "exit_status": proc.returncode,
            "baseline_mb": round(baseline or 0, 1), "peak_mb": round(peak, 1),
            "growth_mb": round(peak - (baseline or 0), 1), "samples": samples}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=500, help="records before the baseline RSS is taken")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--broken-every", type=int, default=100, help="every N-th file truncated (0: none)")
    parser.add_argument("--limit-mb", type=float, default=200.0)
    parser.add_argument("--cli", action="store_true", help="run the `zoo predict` command instead of the API")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="zoo_load_") as tmp:
        t0 = time.perf_counter()
        source = write_images(Path(tmp), args.count, broken_every=args.broken_every)
        made = time.perf_counter() - t0
        if args.cli:
            result = run_cli(source, count=args.count, batch_size=args.batch_size)
        else:
            result = run_api(source, count=args.count, warmup=min(args.warmup, args.count),
                             batch_size=args.batch_size)
    result.update(count=args.count, write_seconds=round(made, 1), limit_mb=args.limit_mb)
    print(json.dumps(result))
    return 0 if result["growth_mb"] < args.limit_mb and result["records"] == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
