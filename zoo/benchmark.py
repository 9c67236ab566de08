"""zoo.benchmark (zoo.bench): throughput of a model on this machine, and how close it runs to the CPU's peak.

    zoo.bench("resnet50", mode="forward", batch_size=32)
    -> {"images_per_s": ..., "ms_per_batch": ..., "macs_per_s": ..., "peak_fraction": ..., ...}

Modes:
    forward  the inference copy (zoo.inference_model: BN folded, dropout gone) called through one
             tf.function with a fixed input signature, on random pixels; no model.predict overhead.
    train    one SGD step per batch (forward in training mode, backward, update) in a tf.function,
             loss = mean square of the outputs (the head's loss costs nothing next to the network);
             mixed_float16 adds loss scaling. MACs counted as 3x forward (forward + two backward GEMMs).
    predict  what `zoo predict` does, end to end: JPEG files written to a temp folder are decoded,
             resized, run through the compiled inference copy and post-processed by the model's task
             (top-k for classification; box decoding + NMS for detection). Batch 1 by default for
             detection, as a camera or a web service would call it.

Timing: `warmup` untimed calls (tracing, oneDNN primitive creation), then `steps` timed calls,
each synchronised by fetching the outputs; the median is reported (the mean is pulled up by
other processes on a shared machine), with the fastest call beside it.

CPU peak (`cpu_peak()`): peak FLOP/s = cores x clock x (vector bits / 32) x FMA units x 2, where
cores = CPUs this process may use / threads per core (hyper-threads share the FMA units), clock =
`cpu MHz` of /proc/cpuinfo (the nominal clock under a hypervisor; the real clock under AVX-512
load may be lower or, with turbo, higher), vector bits =
512 with avx512f, 256 with avx/avx2, 128 otherwise (NEON/SSE), FMA units = 2 (every AVX2 core since
Haswell and Xeon Gold/Platinum for AVX-512; Xeon Bronze/Silver have 1: set ZOO_FMA_UNITS=1). One
FMA = 2 FLOPs, one MAC = 2 FLOPs, so peak_fraction = 2 x MAC/s / peak FLOP/s. AMX / VNNI
int8 / bf16 units are not counted: the peak is float32's.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from zoo.errors import UsageError
from zoo.tf_settings import onednn_enabled

MODES = ("forward", "train", "predict")


def cpu_peak() -> dict[str, Any]:
    """The float32 FMA peak of the CPUs this process may use, and the numbers it is made of."""
    info = _cpuinfo()
    flags = set(info.get("flags", "").split()) | set(info.get("Features", "").split())
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    siblings, per_socket = int(info.get("siblings", 0) or 0), int(info.get("cpu cores", 0) or 0)
    threads_per_core = max(1, siblings // per_socket) if siblings and per_socket else 1
    cores = max(1, logical // threads_per_core)
    if "avx512f" in flags:
        bits = 512
    elif "avx2" in flags or "avx" in flags:
        bits = 256
    else:
        bits = 128
    fma_units = int(os.environ.get("ZOO_FMA_UNITS", "2" if ("fma" in flags or "asimd" in flags) else "1"))
    mhz = float(info.get("cpu MHz", 0) or 0) or _max_mhz() or 2000.0
    peak = cores * mhz * 1e6 * (bits // 32) * fma_units * 2
    return {"cpu": info.get("model name", "unknown"), "cores": cores, "threads_per_core": threads_per_core,
            "clock_mhz": mhz, "vector_bits": bits, "fma_units": fma_units, "peak_flops": peak,
            "formula": "cores x clock x (vector_bits/32) x fma_units x 2"}


def _cpuinfo() -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        if not line.strip():
            if out:
                break  # the first processor is enough
            continue
        key, _, value = line.partition(":")
        out.setdefault(key.strip(), value.strip())
    return out


def _max_mhz() -> float | None:
    try:
        return int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1000
    except (OSError, ValueError):
        return None


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB since it started its program.

    Linux: VmHWM of /proc/self/status, the high-water mark of this program's own memory.
    ru_maxrss is not: Linux carries it across exec, so a child started by a large parent
    (pytest after an hour of tests) reports the parent's peak."""
    import resource
    import sys

    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # kB
    except (OSError, ValueError, IndexError):
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def bench(
    model: Any,
    *,
    mode: Literal["forward", "train", "predict"] = "forward",
    batch_size: int | None = None,
    precision: str = "float32",
    image_size: int | tuple[int, int] | None = None,
    steps: int = 10,
    warmup: int = 2,
    weights: str | None = None,
    optimize: bool = True,
    jit_compile: bool | None = None,
    json: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Throughput of `model`: images/s, ms per batch, MAC/s, fraction of the CPU's peak, peak RSS.

    Args:
        model: a registry name, a model directory, a .keras file or a keras.Model.
        mode: "forward", "train" or "predict" (see the module docstring).
        batch_size: images per call; default 32 (1 for detection in predict mode).
        precision: "float32", "mixed_float16", "mixed_bfloat16" or "auto" (registry names only, as
            the model is built under that policy). On a GPU with a mixed precision, float32 is
            measured too and `mixed_precision_speedup` reported.
        image_size: input side (or (height, width)); registry names only. Default: the model's.
        steps: timed calls (predict: batches of files).
        warmup: untimed calls first.
        weights: weights tag or path, registry names only (default: random weights).
        optimize: run the zoo.inference_model copy in forward / predict modes.
        jit_compile: XLA; default on with a GPU, off on CPU (measured slower there, see README).
        json: also write the result to this file (atomically).
    Returns:
        A dict: model, mode, batch_size, precision, image_size, device, images_per_s, ms_per_batch,
        ms_per_batch_min, macs_per_image, macs_per_s, peak_flops, peak_fraction, peak_rss_mb, ...
    """
    from zoo.training.precision import default_xla, resolve_precision

    if mode not in MODES:
        raise UsageError(f"`mode` must be one of {', '.join(MODES)}. Received: mode={mode!r}.")
    for key, value in (("steps", steps), ("warmup", warmup)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if key == "steps" else 0):
            raise UsageError(f"`{key}` must be a {'positive' if key == 'steps' else 'non-negative'} integer. "
                             f"Received: {key}={value!r}.")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise UsageError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}.")
    size = _image_size(image_size)
    from zoo.modeldir import reference_kind

    kind = reference_kind(model)
    if kind == "name":
        from zoo.registry import get_spec

        get_spec(os.fspath(model))  # an unknown name fails here, before TensorFlow loads
    elif size is not None:
        raise UsageError("`image_size` applies to registry names only; a saved model keeps its input size. "
                         "Pass a registry name, or drop --image-size.")
    precision = resolve_precision(precision)
    xla = default_xla(jit_compile)
    keras_model, label, task = _resolve(model, kind, precision=precision, size=size, weights=weights)
    if batch_size is None:
        batch_size = 1 if (mode == "predict" and task == "detection") else 32

    if mode == "predict":
        timing = _time_predict(keras_model, batch_size=batch_size, steps=steps, warmup=warmup)
    else:
        timing = _time_calls(keras_model, mode=mode, batch_size=batch_size, steps=steps, warmup=warmup,
                             optimize=optimize, xla=xla, precision=precision)
    result = _summary(keras_model, label, mode=mode, batch_size=batch_size, precision=precision, xla=xla,
                      optimize=optimize, task=task, timing=timing, steps=steps)
    if result["device"].startswith("GPU") and precision != "float32" and mode != "predict" and isinstance(model, str):
        base = bench(model, mode=mode, batch_size=batch_size, precision="float32", image_size=image_size,
                     steps=steps, warmup=warmup, weights=weights, optimize=optimize, jit_compile=jit_compile)
        result["float32_images_per_s"] = base["images_per_s"]
        result["mixed_precision_speedup"] = round(result["images_per_s"] / base["images_per_s"], 3)
    if json is not None:
        import json as _json

        from zoo.files import write_text

        write_text(Path(json), _json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def _image_size(image_size) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise UsageError(f"`image_size` must be an integer or (height, width). Received: image_size={image_size!r}.") from None
    if h < 8 or w < 8:
        raise UsageError(f"`image_size` must be at least 8 pixels. Received: image_size={image_size!r}.")
    return h, w


def _resolve(model, kind: str, *, precision, size, weights):
    """(keras.Model, label, task) through zoo.modeldir.resolve_model, under the precision policy.
    A registry name gets random weights unless some are named: throughput does not depend on
    them, and nothing is downloaded."""
    from zoo.modeldir import resolve_model
    from zoo.training.precision import policy

    shape = None
    if kind == "name":
        from zoo.registry import get_spec

        spec = get_spec(os.fspath(model))
        shape = (*size, spec.input_shape[2]) if size else None
        weights = "none" if weights is None else weights
        label = spec.name
    else:
        label = Path(os.fspath(model)).name if kind == "saved" else model.name
    with policy(precision):
        keras_model, meta = resolve_model(model, weights=weights, input_shape=shape)
    return keras_model, label, meta["task"]


def _random_inputs(model, batch_size: int):
    import numpy as np

    rng = np.random.default_rng(0)
    out = []
    for t in model.inputs:
        shape = (batch_size, *[d if d is not None else 224 for d in t.shape[1:]])
        dtype = str(t.dtype)
        if dtype.startswith("int") or dtype.startswith("uint"):
            out.append(np.zeros(shape, dtype))
        else:
            out.append(rng.uniform(0, 255, size=shape).astype(dtype))
    return out


def _time_calls(model, *, mode, batch_size, steps, warmup, optimize, xla, precision):
    import keras
    import tensorflow as tf

    inputs = [tf.constant(x) for x in _random_inputs(model, batch_size)]
    args = inputs[0] if len(inputs) == 1 else inputs
    if mode == "forward":
        net = model
        if optimize:
            from zoo.optimize import inference_model

            net = inference_model(model)
        fn = tf.function(lambda x: net(x, training=False), jit_compile=xla)
    else:
        from zoo.training.precision import wrap_optimizer

        optimizer = wrap_optimizer(keras.optimizers.SGD(0.001), precision)
        variables = model.trainable_variables

        def step(x):
            with tf.GradientTape() as tape:
                outs = keras.tree.flatten(model(x, training=True))
                loss = tf.add_n([tf.reduce_mean(tf.square(tf.cast(o, tf.float32))) for o in outs])
                scaled = optimizer.scale_loss(loss)
            optimizer.apply(tape.gradient(scaled, variables), variables)
            return loss

        fn = tf.function(step, jit_compile=xla)

    def call():
        out = fn(args)
        for t in keras.tree.flatten(out):
            t.numpy()  # wait for the result, as a user would

    t0 = time.perf_counter()
    for _ in range(max(1, warmup)):
        call()
    first = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return {"times": times, "warmup_s": first, "per_batch": batch_size}


def _time_predict(model, *, batch_size, steps, warmup):
    """zoo.predict over JPEG files: decode, resize, compiled forward, task postprocess."""
    import numpy as np
    from PIL import Image

    from zoo.inference import iter_predict

    rng = np.random.default_rng(0)
    n_warm = batch_size * max(1, warmup)
    n = batch_size * steps
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        channels = int(model.inputs[0].shape[-1] or 3)
        paths = []
        for i in range(n_warm + n):
            # camera-like sizes, different per file so the resize really runs
            h, w = int(rng.integers(360, 600)), int(rng.integers(480, 800))
            pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            image = Image.fromarray(pixels).convert("L" if channels == 1 else "RGB")
            path = Path(tmp) / f"img{i:05d}.jpg"
            image.save(path, quality=90)
            paths.append(str(path))
        # One stream, as `zoo predict` runs it: the clock starts once the warm-up batches (model
        # optimisation, tracing) are out, and decoding keeps overlapping the forward passes.
        t0 = time.perf_counter()
        start = None
        done = 0
        for record in iter_predict(paths, model=model, batch_size=batch_size):
            if not record.get("ok"):
                raise RuntimeError(f"predict failed on a benchmark image: {record.get('error')}")
            done += 1
            if done == n_warm:
                start = time.perf_counter()
        total = time.perf_counter() - start
    return {"times": [total / steps] * steps, "warmup_s": start - t0, "per_batch": batch_size, "total_s": total}


def _device() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU: {details.get('device_name', gpus[0].name)} x{len(gpus)}"
    return "CPU"


def _summary(model, label, *, mode, batch_size, precision, xla, optimize, task, timing, steps) -> dict[str, Any]:
    import tensorflow as tf

    times = timing["times"]
    median = statistics.median(times)
    images_per_s = batch_size / median
    macs = _macs(model)
    factor = 3 if mode == "train" else 1
    peak = cpu_peak()
    device = _device()
    result: dict[str, Any] = {
        "model": label,
        "task": task,
        "mode": mode,
        "batch_size": batch_size,
        "precision": precision,
        "image_size": [int(d) if d is not None else None for d in model.inputs[0].shape[1:]],
        "optimized": bool(optimize) and mode != "train",
        "jit_compile": bool(xla) and mode != "predict",
        "steps": steps,
        "device": device,
        "images_per_s": round(images_per_s, 3),
        "ms_per_batch": round(median * 1000, 2),
        "ms_per_batch_min": round(min(times) * 1000, 2),
        "warmup_s": round(timing["warmup_s"], 2),
        "macs_per_image": macs,
        "macs_per_s": round(macs * factor * images_per_s) if macs else None,
        # 0 = TensorFlow's default: as many threads as usable cores
        "threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                    "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
                    "onednn": onednn_enabled()},
        "cpu": peak,
        "peak_flops": peak["peak_flops"],
        "peak_fraction": None,
        "peak_rss_mb": peak_rss_mb(),
    }
    if macs and device == "CPU":
        result["peak_fraction"] = round(2 * macs * factor * images_per_s / peak["peak_flops"], 4)
    return result


def _macs(model) -> int | None:
    try:
        from zoo.macs import count_macs
    except ImportError:
        return None
    try:
        return int(count_macs(model))
    except (UsageError, ValueError, TypeError):
        return None  # dynamic shapes: no MAC count, the rest still stands
