"""SavedModels / TF-Hub modules as Keras 3 layers: same outputs, frozen or trainable in fit, round trips."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.errors import UsageError, WeightsError

import keras
import tensorflow as tf

from zoo.pretrained.hub import HubFeatureExtractor, hub_feature_extractor, trusted_savedmodels


def _small_model():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, x)


@pytest.fixture
def exported(tmp_path):
    model = _small_model()
    model.get_layer("bn").set_weights([np.full(4, 1.5), np.full(4, 0.1), np.full(4, 0.2), np.full(4, 2.0)])
    path = tmp_path / "sm"
    model.export(str(path), format="tf_saved_model", verbose=False)
    return model, path


X = np.random.default_rng(0).uniform(-1, 1, (8, 16, 16, 3)).astype("float32")
Y = np.random.default_rng(1).integers(0, 3, 8)


def _classifier(layer):
    inputs = keras.Input((16, 16, 3))
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(layer(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    return model


def test_exported_model_gives_the_same_outputs(exported):
    model, path = exported
    layer = hub_feature_extractor(path)
    assert layer.endpoint == "serve"
    np.testing.assert_allclose(np.asarray(layer(X)), np.asarray(model(X)), rtol=1e-5, atol=1e-6)


def test_frozen_extractor_in_fit_keeps_its_weights(exported):
    _, path = exported
    layer = hub_feature_extractor(path, trainable=False)
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 6
    model = _classifier(layer)
    before = [w.numpy().copy() for w in layer.weights]
    head = model.get_layer("head").kernel.numpy().copy()
    model.fit(X, Y, epochs=2, batch_size=4, verbose=0)
    assert all(np.array_equal(b, w.numpy()) for b, w in zip(before, layer.weights))
    assert not np.array_equal(head, model.get_layer("head").kernel.numpy())


def test_trainable_extractor_is_fine_tuned_in_place(exported):
    _, path = exported
    layer = hub_feature_extractor(path, trainable=True)
    assert len(layer.trainable_weights) == 4  # conv kernel/bias, bn gamma/beta
    model = _classifier(layer)
    kernel = layer.trainable_weights[0]
    before = kernel.numpy().copy()
    out_before = np.asarray(layer(X))
    history = model.fit(X, Y, epochs=3, batch_size=8, verbose=0)
    assert not np.array_equal(before, kernel.numpy())
    # The update reached the variables the SavedModel's function reads (TFSMLayer's copies would not).
    assert not np.allclose(np.asarray(layer(X)), out_before)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_tf2_hub_style_module_is_called_directly(tmp_path):
    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.ones((3, 5)) * 0.5)

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        def __call__(self, x):
            return {"default": tf.matmul(x, self.w), "other": x}

    tf.saved_model.save(Module(), str(tmp_path / "hubmod"))
    layer = hub_feature_extractor(tmp_path / "hubmod", output_key="default")
    assert layer.endpoint == "__call__"
    x = np.ones((2, 3), "float32")
    np.testing.assert_allclose(np.asarray(layer(x)), np.full((2, 5), 1.5))
    with pytest.raises(UsageError, match="Outputs: default, other"):
        hub_feature_extractor(tmp_path / "hubmod", output_key="nope")(x)


def test_zoo_export_round_trip(tmp_path):
    import zoo

    model = zoo.build("lenet5", weights="fashion_mnist")
    out = zoo.export(model, format="savedmodel", out=tmp_path / "lenet_sm")
    layer = hub_feature_extractor(out)
    x = np.random.default_rng(3).uniform(0, 255, (4, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-6)


def test_finetune_hub_path_gets_a_new_head_and_the_hub_scale_option(exported, tmp_path):
    import json

    from PIL import Image

    import zoo

    _, path = exported
    data = tmp_path / "data"
    for k, name in enumerate(("a", "b", "c")):
        (data / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (16, 16), (80 * k, 20 * i, 90)).save(data / name / f"{i}.png")
    out = tmp_path / "out"
    model = zoo.finetune(f"hub:{path}", data, out=out, epochs=1, batch_size=4, image_size=16, verbose=0,
                         task_options={"hub_scale": "0.5"})
    assert model.output_shape == (None, 3)
    assert float(model.get_layer("hub_rescale").scale) == 0.5
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["arch"] == f"hub:{path}" and meta["task"] == "classification" and meta["labels"] == ["a", "b", "c"]
    assert meta["preprocessing"]["scale"] == 0.5
    assert meta["training"]["options"]["task_options"] == {"hub_scale": 0.5}
    with pytest.raises(UsageError, match="hub_scale"):
        zoo.finetune(f"hub:{path}", data, out=tmp_path / "bad", epochs=1, task_options={"hub_scale": "0"})


def test_keras_file_with_the_layer_loads_only_when_trusted(exported, tmp_path):
    model, path = exported
    wrapped = keras.Sequential([keras.Input((16, 16, 3)), HubFeatureExtractor(str(path), name="hub")])
    file = tmp_path / "m.keras"
    wrapped.save(file)
    with pytest.raises(UsageError, match="safe mode"):
        keras.saving.load_model(file, safe_mode=True)
    with trusted_savedmodels(path):
        loaded = keras.saving.load_model(file, safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(X)), np.asarray(model(X)), rtol=1e-5, atol=1e-6)


def test_bad_sources_say_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(UsageError, match="does not exist"):
        hub_feature_extractor(tmp_path / "missing")
    (tmp_path / "tf1").mkdir()
    (tmp_path / "tf1" / "tfhub_module.pb").write_bytes(b"")
    with pytest.raises(UsageError, match="TF1 Hub module"):
        hub_feature_extractor(tmp_path / "tf1")
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "hubcache"))
    with pytest.raises(WeightsError, match="hubcache"):
        hub_feature_extractor("https://tfhub.dev/google/some/feature_vector/5")


def test_finetune_hub_without_image_size_reads_the_signature_input(exported, tmp_path):
    """A SavedModel whose input is 16 px, fine-tuned without --image-size, used to die with a traceback
    building a 224 px input; its signature says 16."""
    from PIL import Image

    import zoo
    from zoo.pretrained.hub import signature_input_shape

    _, path = exported
    assert signature_input_shape(path) == (16, 16, 3)
    data = tmp_path / "data"
    for k, name in enumerate(("a", "b")):
        (data / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (20, 20), (80 * k, 20 * i, 90)).save(data / name / f"{i}.png")
    model = zoo.finetune(f"hub:{path}", data, out=tmp_path / "out", epochs=1, batch_size=4, verbose=0)
    assert model.input_shape == (None, 16, 16, 3)
