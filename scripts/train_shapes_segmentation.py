"""The segmentation learning check: FCN-8s from scratch on synthetic shapes, through `zoo finetune`.

    python scripts/train_shapes_segmentation.py --work /tmp/zoo-seg --epochs 40

Makes 200 training images, 50 validation and 100 held-out test images at 96 px
(scripts/make_shapes_segmentation.py, seeds 0/2/1), trains fcn8s on a resnet18 backbone from
scratch with `zoo.finetune` (the same path as `zoo finetune fcn8s DATA --backbone resnet18
--image-size 96 --weights none`), then measures the held-out mIoU with `zoo.evaluate` at the
images' original size. Prints one JSON line with the test metrics and the training time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path


def _generator():
    path = Path(__file__).with_name("make_shapes_segmentation.py")
    spec = importlib.util.spec_from_file_location("make_shapes_segmentation", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/zoo-seg", help="folder for the data and the model directory")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--head-channels", type=int, default=256)
    args = parser.parse_args()

    import zoo

    work = Path(args.work)
    gen = _generator()
    train = gen.make_shapes(work / "train", images=args.images, size=args.size, seed=0)
    val = gen.make_shapes(work / "val", images=50, size=args.size, seed=2)
    test = gen.make_shapes(work / "test", images=100, size=args.size, seed=1)
    t0 = time.time()
    cpu0 = time.process_time()
    zoo.finetune("fcn8s", train, out=work / "model", epochs=args.epochs, backbone=args.backbone,
                 image_size=args.size, weights="none", val=str(val), batch_size=args.batch_size, lr=args.lr,
                 overwrite=True, verbose=2, task_options={"head_channels": args.head_channels})
    seconds, cpu = time.time() - t0, time.process_time() - cpu0
    scores = zoo.evaluate(work / "model", test)
    print(json.dumps({"test_miou": round(scores["miou"], 4), "test_pixel_accuracy": round(scores["pixel_accuracy"], 4),
                      "per_class_iou": scores["per_class_iou"], "train_seconds": round(seconds, 1),
                      "train_cpu_seconds": round(cpu, 1), "epochs": args.epochs, "model": str(work / "model")}))


if __name__ == "__main__":
    main()
