"""Precision policies: auto | float32 | mixed_float16 | mixed_bfloat16, and the XLA default.

auto: float16 on GPUs of compute capability 7.x (tensor cores, no fast bf16), bfloat16 on 8.0+,
float32 on CPU. Variables always stay float32; zoo's heads compute the softmax in float32
(zoo.models.common.head_dtype); float16 adds dynamic loss scaling (LossScaleOptimizer).
"""

from __future__ import annotations

import contextlib

from zoo.errors import UsageError

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def gpu_capabilities() -> list[tuple[int, int]]:
    import tensorflow as tf

    caps = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        caps.append(tuple(details.get("compute_capability") or (0, 0)))
    return caps


def resolve_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise UsageError(f"`precision` must be one of {', '.join(PRECISIONS)}. Received: precision={precision!r}.")
    if precision != "auto":
        return precision
    caps = gpu_capabilities()
    if not caps:
        return "float32"
    low = min(caps)
    if low >= (8, 0):
        return "mixed_bfloat16"
    if low >= (7, 0):
        return "mixed_float16"
    return "float32"


def default_xla(xla: bool | None) -> bool:
    """XLA on by default with a GPU only (on CPU compile time outweighs the gain for small models)."""
    if xla is not None:
        return bool(xla)
    return bool(gpu_capabilities())


@contextlib.contextmanager
def policy(name: str):
    """Set the global Keras dtype policy for the block, then restore the previous one."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def wrap_optimizer(optimizer, precision: str):
    """Dynamic loss scaling for float16 (bfloat16 has float32's range and needs none)."""
    if precision == "mixed_float16":
        import keras

        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
