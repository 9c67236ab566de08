"""One preprocessing table (zoo.preprocessing.PREPROCESSING): every consumer turns the same pixels
into the same model input, for every mode."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.preprocessing import PREPROCESSING

MODES = sorted(PREPROCESSING)
# each channel at 0, 127.5 and 255, in every position
PIXELS = np.array([[[[0.0, 127.5, 255.0], [255.0, 0.0, 127.5], [127.5, 255.0, 0.0]]]], np.float32)  # (1, 1, 3, 3)


def expected(mode: str, x: np.ndarray) -> np.ndarray:
    """The table read literally: flip to BGR if asked, then (x * scale - mean) / std per channel."""
    row = PREPROCESSING[mode]
    x = x.astype(np.float64)
    if row["channel_order"] == "bgr":
        x = x[..., ::-1]
    mean = np.broadcast_to(np.asarray(row["mean"], np.float64), (3,))
    std = np.broadcast_to(np.asarray(row["std"], np.float64), (3,))
    return (x * row["scale"] - mean) / std


def test_every_mode_matches_keras_applications():
    from keras.applications import imagenet_utils

    for mode in ("torch", "caffe", "tf"):
        want = imagenet_utils.preprocess_input(PIXELS.copy(), mode=mode)
        np.testing.assert_allclose(expected(mode, PIXELS), want, rtol=1e-5, atol=1e-4, err_msg=mode)


@pytest.mark.parametrize("mode", MODES)
def test_the_weights_presets_are_the_table(mode):
    from zoo.pretrained.presets import PREPROCESSING as presets

    for key, value in PREPROCESSING[mode].items():
        assert presets[mode][key] == value, (mode, key)


@pytest.mark.parametrize("mode", MODES)
def test_the_models_preprocessing_layer_agrees(mode):
    import keras

    from zoo.models.common import PREPROCESSING as models_table
    from zoo.models.common import model_input

    assert models_table is PREPROCESSING
    inputs, x, _ = model_input((1, 3, 3), include_preprocessing=True, preprocessing=mode, default_preprocessing="unit")
    got = keras.ops.convert_to_numpy(keras.Model(inputs, x)(PIXELS))
    np.testing.assert_allclose(got, expected(mode, PIXELS), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_predict_normalises_models_without_the_layer_alike(mode):
    """A model built with include_preprocessing=False gets its preprocessing from predict."""
    import keras

    from zoo.inference import make_forward

    inputs = keras.Input((1, 3, 3))
    model = keras.Model(inputs, keras.layers.Activation("linear")(inputs))  # hands back what it receives
    meta = {"task": "classification", "preprocessing": {"mode": mode, "in_model": False}}
    got = make_forward(model, meta)(PIXELS)
    np.testing.assert_allclose(got, expected(mode, PIXELS), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_export_prepares_its_parity_inputs_alike(tmp_path, mode):
    from PIL import Image

    import keras

    from zoo.exporting import sample_inputs

    pixels = np.array([[[0, 128, 255]]], np.uint8).repeat(4, 0).repeat(4, 1)  # uint8: 128 stands for the middle
    Image.fromarray(pixels).save(tmp_path / "a.png")
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, keras.layers.Activation("linear")(inputs))
    meta = {"task": "classification", "input_shape": [4, 4, 3], "preprocessing": {"mode": mode, "in_model": False}}
    got = sample_inputs(model, meta, calibration=tmp_path)
    np.testing.assert_allclose(got[0], expected(mode, pixels.astype(np.float32)), rtol=1e-6, atol=1e-5)
