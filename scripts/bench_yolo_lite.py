"""Frames per second of YOLO-LITE at batch 1: forward + decode + class-aware NMS, as `zoo predict` runs it.

    python scripts/bench_yolo_lite.py [--model yolo_lite|DIR] [--seconds 10] [--conf 0.25]

The forward pass is zoo.inference.make_forward (a traced tf.function on the inference copy);
decode + NMS is the detection task's postprocess (numpy). Prints the median FPS over timed runs,
and the share of time spent in postprocessing. With random weights (a registry name) --conf 0.001
makes every anchor a candidate, the worst case for NMS.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import zoo  # noqa: E402,F401  before TensorFlow: zoo's TensorFlow settings (zoo.tf_settings) apply only then


def bench(model_ref: str = "yolo_lite", *, seconds: float = 10.0, conf: float = 0.25, threads: int | None = None) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    from zoo.inference import make_forward
    from zoo.modeldir import resolve_model
    from zoo.tasks.detection import TASK

    model, meta = resolve_model(model_ref, weights="none" if not os.path.exists(model_ref) else None)
    meta = {**meta, "input_shape": list(meta.get("input_shape") or model.input_shape[1:])}
    run = make_forward(model, meta)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    batch, info = TASK.prepare(image, meta)
    batch = batch[None]
    options = {"conf": conf, "iou": 0.45, "max_det": 100}
    for _ in range(10):  # trace and warm up
        TASK.postprocess(run(batch), [info], meta, options)
    times, post = [], []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        outputs = run(batch)
        t1 = time.perf_counter()
        records = TASK.postprocess(outputs, [info], meta, options)
        t2 = time.perf_counter()
        times.append(t2 - t0)
        post.append(t2 - t1)
    return {"model": model_ref, "input": meta["input_shape"], "batch_size": 1, "conf": conf,
            "fps_median": round(1.0 / float(np.median(times)), 1), "fps_mean": round(len(times) / float(np.sum(times)), 1),
            "postprocess_ms_median": round(1000 * float(np.median(post)), 3), "runs": len(times),
            "detections_last": len(records[0]["detections"]), "cpu_count": os.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="yolo_lite", help="registry name (random weights) or model directory")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--threads", type=int, default=None, help="TensorFlow intra-op threads")
    args = parser.parse_args()
    print(json.dumps(bench(args.model, seconds=args.seconds, conf=args.conf, threads=args.threads)))


if __name__ == "__main__":
    main()
