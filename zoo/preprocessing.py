"""The one preprocessing table: how pixels in [0, 255] become a model's input, for each mode.

    y = (x * scale - mean) / std, after flipping RGB to BGR when channel_order is "bgr"

Modes are those of keras.applications' `preprocess_input` ("torch", "caffe", "tf") plus "unit"
(x / 255). A `mean` or `std` of one value applies to every channel, so a mode also fits gray
inputs. The models' Preprocess layer (zoo.models.common), the weights presets
(zoo.pretrained.presets) and predict / export for models without preprocessing inside all read
this table; it imports nothing, so each of them may.
"""

from __future__ import annotations

from typing import Any

PREPROCESSING: dict[str, dict[str, Any]] = {
    "torch": {"mode": "torch", "scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
              "channel_order": "rgb"},
    "caffe": {"mode": "caffe", "scale": 1.0, "mean": [103.939, 116.779, 123.68], "std": [1.0, 1.0, 1.0],
              "channel_order": "bgr"},
    "tf": {"mode": "tf", "scale": 1 / 127.5, "mean": [1.0], "std": [1.0], "channel_order": "rgb"},
    "unit": {"mode": "unit", "scale": 1 / 255, "mean": [0.0], "std": [1.0], "channel_order": "rgb"},
}


def normalise(x, config: dict[str, Any], *, dtype: Any = "float32"):
    """`x` (pixels in [0, 255], channels last; a numpy array or a TensorFlow tensor of `dtype`)
    preprocessed as `config` says: what zoo's Preprocess layer does inside a model, for models
    that take already-preprocessed input."""
    import numpy as np

    if config.get("channel_order") == "bgr":
        x = x[..., ::-1]
    mean = np.asarray(config.get("mean", [0.0]), dtype)
    std = np.asarray(config.get("std", [1.0]), dtype)
    return (x * float(config.get("scale", 1.0)) - mean) / std


def adapt_preprocessing(pre: dict[str, Any] | None, channels: int | None) -> dict[str, Any] | None:
    """`pre` (RGB preprocessing) for an input with `channels` channels: the one rule per channel count.

    1 channel (gray, R=G=B): the average mean and std; 3: as they are; 4 or more (RGB + alpha or
    near-infrared...): the RGB values, then the average for every extra channel. zoo.pretrained
    adapts the first convolution to match when it loads RGB weights. BGR preprocessing fits one
    channel (a flip of gray is gray) or three; other counts are refused.
    """
    if pre is None or channels is None:
        return pre
    mean, std = list(pre.get("mean", [0.0])), list(pre.get("std", [1.0]))
    if max(len(mean), len(std)) in (1, channels):
        return pre
    if pre.get("channel_order") == "bgr":
        if channels != 1:
            from zoo.errors import UsageError

            raise UsageError(
                f"These weights expect BGR input (mode {pre.get('mode')!r}); zoo cannot extend BGR preprocessing to "
                f"{channels} channels. Received: input_shape with {channels} channels. Use include_preprocessing=False "
                f"and preprocess the extra channels yourself, or weights with RGB preprocessing (e.g. tv_in1k).")
    mean = mean * 3 if len(mean) == 1 else mean
    std = std * 3 if len(std) == 1 else std
    if channels == 1:
        mean, std = [sum(mean) / len(mean)], [sum(std) / len(std)]
    else:
        mean = (mean + [sum(mean) / len(mean)] * channels)[:channels]
        std = (std + [sum(std) / len(std)] * channels)[:channels]
    return {**pre, "mean": mean, "std": std, "channel_order": "rgb"}
