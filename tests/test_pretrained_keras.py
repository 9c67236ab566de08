"""Keras weight files -> zoo: the legacy HDF5 layout of keras.applications (tf_keras save_weights,
with and without top) and zoo's own Keras 3 .weights.h5; outputs equal the source model's."""

from __future__ import annotations

import numpy as np
import pytest

import zoo
import zoo.registry
from zoo.errors import UsageError, WeightsError
from zoo.pretrained.formats import detect_format


def _randomise(model, seed: int = 0) -> None:
    """Non-trivial weights, batch-norm statistics included, at a scale that keeps deep nets finite."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        names = [w.name.split("/")[-1].split(":")[0] for w in layer.weights]
        values = []
        for name, w in zip(names, layer.get_weights()):
            if name in ("gamma", "moving_variance"):
                values.append(rng.uniform(0.5, 1.5, w.shape))
            elif name in ("beta", "moving_mean", "bias"):
                values.append(rng.normal(0, 0.1, w.shape))
            else:  # kernels
                values.append(rng.normal(0, np.sqrt(1.0 / np.prod(w.shape[:-1])), w.shape))
        if values:
            layer.set_weights([v.astype("float32") for v in values])


def _tf_keras_file(tmp_path, ctor: str, shape, include_top: bool):
    tf_keras = pytest.importorskip("tf_keras")
    ref = getattr(tf_keras.applications, ctor)(weights=None, input_shape=shape, include_top=include_top,
                                               **({"classifier_activation": None} if include_top else {}))
    _randomise(ref)
    path = tmp_path / f"{ctor}_{'top' if include_top else 'notop'}.h5"
    ref.save_weights(str(path))
    return ref, path


@pytest.fixture(scope="module")
def resnet50_notop(tmp_path_factory):
    return _tf_keras_file(tmp_path_factory.mktemp("keras"), "ResNet50", (64, 64, 3), False)


@pytest.mark.parametrize("arch, ctor, shape, include_top", [
    ("resnet50", "ResNet50", (64, 64, 3), False),  # Keras's v1: conv bias, stride in the 1x1, eps 1.001e-5
    ("densenet121", "DenseNet121", (64, 64, 3), True),  # Keras 2 names with "/" ("conv1/conv")
    ("vgg16", "VGG16", (64, 64, 3), False),
])
def test_legacy_keras_applications_h5_gives_the_same_outputs(tmp_path, arch, ctor, shape, include_top,
                                                             resnet50_notop):
    if arch == "resnet50":
        ref, path = resnet50_notop
    else:
        ref, path = _tf_keras_file(tmp_path, ctor, shape, include_top)
    assert detect_format(path) == "keras_legacy_h5"
    model = zoo.build(arch, weights=str(path), input_shape=shape, include_top=include_top,
                      include_preprocessing=False, classifier_activation=None)
    report = model._zoo_load_report
    assert report.ok and report.unused == [], report.summary()
    x = np.random.default_rng(1).normal(0, 1, (2, *shape)).astype("float32")
    want = np.asarray(ref(x, training=False))
    got = np.asarray(model(x, training=False))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(want).max())))


def test_keras_resnet_file_imposes_keras_style_and_caffe_preprocessing(resnet50_notop):
    _, path = resnet50_notop
    source = zoo.registry.resolve_weights("resnet50", str(path))
    assert source.arch_options == {"style": "keras"} and source.preprocessing["mode"] == "caffe"
    assert source.include_top is False
    with pytest.raises(UsageError, match="need style='keras'"):
        zoo.build("resnet50", weights=str(path), include_top=False, style="torchvision")
    # A notop file into a model with a head: backbone loaded, the head reported as new.
    model = zoo.build("resnet50", weights=str(path), input_shape=(64, 64, 3), num_classes=4)
    assert model._zoo_load_report.missing == ["predictions"]


def test_zoo_keras3_weights_round_trip_and_style_detection(tmp_path):
    from zoo.models import resnet

    src = resnet.build("resnet18", num_classes=7, input_shape=(32, 32, 3), style="keras")
    _randomise(src)
    path = tmp_path / "r18.weights.h5"
    src.save_weights(str(path))
    assert detect_format(path) == "keras"
    source = zoo.registry.resolve_weights("resnet18", str(path))
    assert source.arch_options == {"style": "keras"} and source.num_classes == 7
    model = zoo.build("resnet18", weights=str(path), input_shape=(32, 32, 3))
    x = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(src(x)), rtol=1e-5, atol=1e-6)
    swapped = zoo.build("resnet18", weights=str(path), input_shape=(32, 32, 3), num_classes=2)
    assert [n for n, _ in swapped._zoo_load_report.skipped] == ["predictions"]


def test_shape_mismatch_names_the_layer_and_both_shapes(tmp_path):
    from zoo.models import lenet

    src = lenet.build("lenet5", num_classes=10, activation="tanh")
    path = tmp_path / "l.weights.h5"
    src.save_weights(str(path))
    # Same file into a model whose first dense is a different size: not a head layer, so an error.
    import keras

    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Conv2D(6, 5, name="conv1")(inputs)
    x = keras.layers.Conv2D(8, 5, name="conv2")(x)
    other = keras.Model(inputs, x)
    from zoo.pretrained.load import load_weights
    from zoo.registry import resolve_weights

    with pytest.raises(WeightsError) as err:
        load_weights(other, resolve_weights("lenet5", str(path)))
    assert "'conv2'" in str(err.value) and "(5, 5, 6, 8)" in str(err.value) and "(5, 5, 6, 16)" in str(err.value)


def test_missing_file_and_unknown_tag_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        zoo.build("lenet5", weights=str(tmp_path / "nope.weights.h5"))
    with pytest.raises(UsageError, match="Tags: fashion_mnist"):
        zoo.build("lenet5", weights="imagenet")
    bad = tmp_path / "junk.h5"
    bad.write_bytes(b"not a weights file at all")
    with pytest.raises(WeightsError, match="not a weights file"):
        zoo.build("lenet5", weights=str(bad))


def test_weights_from_a_keras_model_archive(tmp_path):
    """A .keras file (e.g. model.keras of a zoo model directory) gives its weights by path, never unpickled."""
    from zoo.modeldir import save_model

    src = zoo.build("lenet5", weights="fashion_mnist")
    path = save_model(src, tmp_path / "model.keras")
    assert detect_format(path) == "keras"
    model = zoo.build("lenet5", weights=str(path), num_classes=4)
    assert model._zoo_load_report.loaded == ["conv1", "conv2", "fc1", "fc2"]
    np.testing.assert_array_equal(model.get_layer("conv2").get_weights()[0], src.get_layer("conv2").get_weights()[0])
