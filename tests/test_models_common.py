"""The shared pieces: in-model preprocessing, argument checks, LeNet-5."""

import numpy as np
import pytest


def test_preprocess_matches_keras_applications_modes():
    import keras

    from zoo.models.common import PREPROCESSING, Preprocess

    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    for mode in ("torch", "caffe", "tf"):
        cfg = {k: v for k, v in PREPROCESSING[mode].items()}
        got = keras.ops.convert_to_numpy(Preprocess(**cfg)(x))
        want = keras.applications.imagenet_utils.preprocess_input(x.copy(), mode=mode)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4, err_msg=mode)


def test_preprocess_serialises_in_safe_mode(tmp_path):
    import keras

    from zoo.models import lenet

    model = lenet.build(num_classes=3)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)


def test_lenet5_params_shape_and_features():
    from zoo.models import lenet

    model = lenet.build()
    assert model.count_params() == 61_706
    x = np.zeros((2, 32, 32, 1), "float32")
    assert tuple(model(x).shape) == (2, 10)
    features = lenet.feature_model(lenet.build(include_top=False))
    out = features(x)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"s2": (2, 14, 14, 6), "s4": (2, 5, 5, 16)}


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"num_classes": 0}, ["classes", "classes=0"]),
        ({"include_top": False, "pooling": "mean"}, ["'avg', 'max' or None", "pooling='mean'"]),
        ({"input_shape": (8, 8, 1), "include_top": False}, ["at least 16x16", "(8, 8, 1)"]),
        ({"input_shape": (64, 64, 1)}, ["include_top=False", "(64, 64, 1)"]),
        ({"input_shape": (32, 32, 2), "preprocessing": "torch"}, ["3 `mean` values", "2 channels"]),
        ({"activation": "gelu"}, ["'relu', 'tanh'", "activation='gelu'"]),
        ({"depth": 3}, ["no option 'depth'", "Options of lenet5"]),
    ],
)
def test_lenet5_bad_arguments_say_rule_value_and_fix(kwargs, words):
    from zoo.errors import UsageError
    from zoo.models import lenet

    with pytest.raises(UsageError) as err:
        lenet.build(**kwargs)
    for word in words:
        assert word in str(err.value)


def test_mixed_precision_keeps_the_softmax_head_in_float32():
    import keras

    from zoo.models import lenet

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = lenet.build(num_classes=4)
        out = model(np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 1)).astype("float32"))
        assert model.get_layer("conv1").compute_dtype == "float16"
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
        np.testing.assert_allclose(np.asarray(out).sum(axis=-1), 1.0, rtol=1e-5)
    finally:
        keras.mixed_precision.set_global_policy("float32")
