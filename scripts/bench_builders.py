"""Forward images/s of zoo's builders beside keras.applications', same process, interleaved.

For each shared family (VGG16, ResNet50, DenseNet121) both models are built with random
weights and no in-model preprocessing, warmed up, then timed in alternation (keras, zoo,
keras, zoo, ...) so that machine noise hits both alike; the table shows the median and the best of the runs
(the best is the least disturbed on a shared machine).
ResNet50 is timed in zoo's "keras" style (the same v1 network as keras.applications) and in its
default torchvision v1.5 style (stride in the 3x3: more MACs), for reference.

    python scripts/bench_builders.py [--batch-size 8] [--runs 5] [--size 224]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import zoo  # noqa: E402,F401  before TensorFlow: zoo's TensorFlow settings (zoo.tf_settings) apply only then

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CASES = [  # label, keras.applications function, zoo name, zoo options
    ("VGG16", "VGG16", "vgg16", {}),
    ("ResNet50", "ResNet50", "resnet50", {"style": "keras"}),
    ("ResNet50 (zoo v1.5)", None, "resnet50", {}),
    ("DenseNet121", "DenseNet121", "densenet121", {}),
]


def _forward(model):
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return fn


def _time(fn, x, batches: int) -> float:
    start = time.perf_counter()
    for _ in range(batches):
        out = fn(x)
    _ = out.numpy() if hasattr(out, "numpy") else out  # wait for the result
    return batches * x.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per model (median reported)")
    parser.add_argument("--batches", type=int, default=2, help="batches per timed run")
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()

    import keras
    import numpy as np
    from rich.console import Console
    from rich.progress import track
    from rich.table import Table

    shape = (args.size, args.size, 3)
    x = np.random.default_rng(0).uniform(-1, 1, (args.batch_size, *shape)).astype("float32")
    rows = []
    for label, keras_fn, name, options in track(CASES, description="benchmarking"):
        contenders = {}
        if keras_fn:
            contenders["keras"] = _forward(getattr(keras.applications, keras_fn)(weights=None, input_shape=shape))
        contenders["zoo"] = _forward(zoo.build(name, input_shape=shape, include_preprocessing=False, **options))
        speeds = {key: [] for key in contenders}
        for fn in contenders.values():  # warm-up: tracing and first-call allocations
            _time(fn, x, 1)
        order = list(contenders)
        for run in range(args.runs):
            # ABBA order: neither contender always runs first after the other's cache footprint.
            for key in (order if run % 2 == 0 else order[::-1]):
                speeds[key].append(_time(contenders[key], x, args.batches))
        rows.append((label, {k: statistics.median(v) for k, v in speeds.items()},
                     {k: (min(v), max(v)) for k, v in speeds.items()}))
        keras.backend.clear_session()

    table = Table(title=f"forward images/s, batch {args.batch_size}, {args.size}x{args.size}, median of {args.runs} "
                        f"interleaved runs ({os.cpu_count()} CPUs)")
    # The best run is the least disturbed by other processes on a shared machine; the median is typical.
    for column in ("model", "keras median", "zoo median", "zoo/keras median", "keras best", "zoo best",
                   "zoo/keras best"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for label, med, rng in rows:
        k, z = med.get("keras"), med["zoo"]
        kb, zb = (rng["keras"][1] if "keras" in rng else None), rng["zoo"][1]
        table.add_row(label, f"{k:.2f}" if k else "-", f"{z:.2f}", f"{z / k:.2f}" if k else "-",
                      f"{kb:.2f}" if kb else "-", f"{zb:.2f}", f"{zb / kb:.2f}" if kb else "-")
    Console().print(table)


if __name__ == "__main__":
    main()
