"""Peak RSS of zoo.predict on hostile-sized inputs, each against the same model on a normal image.

    python scripts/measure_rss.py            # all cases, a table on stdout
    python scripts/measure_rss.py --json     # one JSON object per case
    python scripts/measure_rss.py --root /path/to/other/checkout   # the same cases on another zoo

Each measurement runs in a fresh Python process (the peak RSS is a process's own, so cases must not
share one). Cases (random weights: memory does not depend on their values, and nothing is downloaded):
- crop: a 1 x 1,000,000 px PNG through resnet18 whose preprocessing resizes with `crop`
  (every ImageNet / torchvision row), against a 640 x 480 photo-sized image;
- segmentation: a 4000 x 3000 (12 MP) image through fcn32s (21 classes), against 500 x 375;
- save_dir: 8 images of 4000 x 3000 through resnet18 with --save-dir, against one 640 x 480 image
  with --save-dir.
The issue's bound: each hostile case at most 1.5 x its normal case.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, tempfile
from pathlib import Path
import numpy as np
from PIL import Image

arch, resize, sizes, save_dir = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4] == "1"
work = Path(tempfile.mkdtemp())
paths = []
for i, (h, w) in enumerate(sizes):
    rng = np.random.default_rng(i)
    # smooth content, like a photo (and PNG-compressible, so the files stay small)
    base = rng.integers(0, 255, (max(1, h // 64), max(1, w // 64), 3), np.uint8)
    Image.fromarray(base).resize((w, h), Image.Resampling.BILINEAR).save(work / f"img{i}.png")
    paths.append(str(work / f"img{i}.png"))
import zoo
from zoo.benchmark import peak_rss_mb
from zoo.modeldir import attach_meta, get_meta

model = zoo.build(arch, weights=None)
meta = get_meta(model)
if resize != "-":
    attach_meta(model, {**meta, "preprocessing": {**meta.get("preprocessing", {}), "resize": resize,
                                                  "crop_pct": 0.875}})
records = zoo.predict(paths, model=model, batch_size=8, save_dir=str(work / "out") if save_dir else None)
errors = [r["error"] for r in records if not r["ok"]]
print(json.dumps({"mb": peak_rss_mb(), "failed": len(errors),
                  "error": errors[0] if errors else None}))
"""

CASES = {
    "crop": ("resnet18", "crop", [[1, 1_000_000]], [[480, 640]], False),
    "segmentation": ("fcn32s", "-", [[3000, 4000]], [[375, 500]], False),
    "save_dir": ("resnet18", "-", [[3000, 4000]] * 8, [[480, 640]], True),
}


def peak_mb(arch: str, resize: str, sizes, save_dir: bool, root: Path = ROOT) -> dict:
    """{"mb": peak RSS in MiB, "failed": inputs that failed, "error": the first failure}."""
    env = {**os.environ, "PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "ZOO_OFFLINE": "1", "ZOO_HOME": tempfile.mkdtemp()}
    result = subprocess.run([sys.executable, "-c", CHILD, arch, resize, json.dumps(sizes), "1" if save_dir else "0"],
                            capture_output=True, text=True, env=env, timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"case failed: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose zoo is measured (default: this one)")
    parser.add_argument("cases", nargs="*", help=f"some of {', '.join(CASES)} (default: all)")
    args = parser.parse_args()
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case {unknown[0]!r}; choose from {', '.join(CASES)}")
    for name in args.cases or list(CASES):
        arch, resize, hostile, normal, save_dir = CASES[name]
        bad = peak_mb(arch, resize, hostile, save_dir, args.root)
        good = peak_mb(arch, resize, normal, save_dir, args.root)
        row = {"case": name, "model": arch, "hostile_mb": round(bad["mb"], 1), "normal_mb": round(good["mb"], 1),
               "ratio": round(bad["mb"] / good["mb"], 2), "hostile_failed": bad["failed"], "error": bad["error"]}
        failed = f"  ({bad['failed']} input(s) failed: {bad['error']})" if bad["failed"] else ""
        print(json.dumps(row) if args.json else
              f"{name:13s} {arch:9s} hostile {row['hostile_mb']:8.1f} MB  normal {row['normal_mb']:8.1f} MB  "
              f"ratio {row['ratio']:.2f}{failed}", flush=True)


if __name__ == "__main__":
    main()
