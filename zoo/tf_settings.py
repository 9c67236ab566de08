"""TensorFlow settings zoo chooses for its users, applied by `import zoo` before TensorFlow loads.

TensorFlow reads them once, when it is first imported, and a value the user set wins.
oneDNN (TF_ENABLE_ONEDNN_OPTS=1): TensorFlow turns its oneDNN CPU kernels on by itself only on CPUs
with AVX-512 VNNI/BF16 or AMX. On an AVX2 CPU its own kernels compute a convolution's input gradient
on 1x1 maps 40x slower (210 vs 5 ms for ResNet's 512-channel 3x3 at batch 32): ResNet-18 at 32 px
trains at 145 instead of 32 images/s, ResNet-50 inference runs 1.3x faster (README, "CPU settings").
This module never imports TensorFlow itself: `import zoo` stays instant.
"""

from __future__ import annotations

import os
import sys

ONEDNN = "TF_ENABLE_ONEDNN_OPTS"
_user_onednn: str | None = None  # the user's own value at `import zoo` (None: nobody chose)


def apply() -> None:
    global _user_onednn
    _user_onednn = os.environ.get(ONEDNN)
    os.environ.setdefault(ONEDNN, "1")


def onednn_enabled() -> bool | None:
    """Whether this process's TensorFlow runs oneDNN's CPU kernels (None: TensorFlow not loaded or unknown)."""
    if "tensorflow" not in sys.modules:
        return None
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # a TensorFlow build without the probe
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def onednn_warning() -> str | None:
    """A warning when TensorFlow runs the CPU without oneDNN only because it was imported before zoo;
    None when the user chose (TF_ENABLE_ONEDNN_OPTS set before `import zoo`), oneDNN is on, or a GPU
    runs the model."""
    if _user_onednn is not None or onednn_enabled() is not False:
        return None
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return None
    return ("warning: TensorFlow was imported before zoo, so its oneDNN CPU kernels are off on this CPU: training "
            "convolutions can be several times slower (ResNet-18 at 32 px: 4.5x). Import zoo before TensorFlow or "
            "Keras, or set TF_ENABLE_ONEDNN_OPTS=1 before starting Python (TF_ENABLE_ONEDNN_OPTS=0 keeps "
            "TensorFlow's own kernels and silences this).")
