"""Learning check for YOLO-LITE: train from scratch on synthetic shapes, report held-out mAP.

    python scripts/train_shapes_detection.py --images 240 --size 224 --epochs 40

Generates a seeded training set and a held-out set with scripts/make_shapes_detection.py, trains
with a plain `model.fit` on the detection task's data, model and loss (zoo.tasks.detection's TASK),
then evaluates mAP@0.5 and mAP@[.5:.95] with pycocotools and prints them with the wall time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time
from pathlib import Path

import zoo  # noqa: E402,F401  before TensorFlow: zoo's TensorFlow settings (zoo.tf_settings) apply only then


def _generator():
    path = Path(__file__).with_name("make_shapes_detection.py")
    spec = importlib.util.spec_from_file_location("make_shapes_detection", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_and_evaluate(root: Path, *, images: int, val_images: int, size: int, epochs: int, batch_size: int,
                       lr: float, seed: int, task_options: dict | None = None, augment: str = "light",
                       verbose: int = 2) -> dict:
    import keras

    from zoo.tasks.detection import TASK
    from zoo.training.options import TrainOptions

    shapes = _generator()
    train_dir = shapes.make_shapes(root / "train", images=images, size=size, seed=seed)
    val_dir = shapes.make_shapes(root / "val", images=val_images, size=size, seed=seed + 1000)
    opts = TrainOptions(input_shape=(size, size, 3), seed=seed, val=str(val_dir), augment=augment,
                        weights=None, task_options=TASK.parse_options(task_options))
    keras.utils.set_random_seed(seed)
    data = TASK.load_data(train_dir, opts)
    model = TASK.build_model("yolo_lite", data, opts)
    steps = epochs * -(-data.num_train // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(lr * 0.1, steps, alpha=0.05, warmup_target=lr,
                                                      warmup_steps=max(1, steps // 20))
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=TASK.loss(data, opts))
    start, cpu = time.perf_counter(), time.process_time()
    model.fit(data.train.batch(batch_size).prefetch(2), epochs=epochs, verbose=verbose)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    result = TASK.evaluate(model, {}, val_dir, {})
    train_result = TASK.evaluate(model, {}, train_dir, {})
    return {"map50": result["map50"], "map": result["map"], "voc07_map": result["voc07_map"],
            "train_map50": train_result["map50"], "train_seconds": round(seconds, 1), "train_cpu_seconds": round(cpu, 1),
            "images": images, "size": size, "epochs": epochs,
            "task_options": {k: getattr(opts.task_options, k) for k in task_options or {}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--val-images", type=int, default=60)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--augment", default="light", choices=["none", "light", "strong"])
    parser.add_argument("--opt", action="append", default=[], help="task option key=value (e.g. lambda_coord=5)")
    args = parser.parse_args()
    task_options = dict(item.split("=", 1) for item in args.opt)  # typed and checked by TASK.parse_options
    with tempfile.TemporaryDirectory() as tmp:
        result = train_and_evaluate(Path(tmp), images=args.images, val_images=args.val_images, size=args.size,
                                    epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                    task_options=task_options, augment=args.augment)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
