"""One model resolution (zoo.modeldir.resolve_model / reference_kind) behind predict, evaluate,
export, bench and finetune: the same reference means the same thing, and fails the same way."""

from __future__ import annotations

import pytest

from zoo.errors import UsageError
from zoo.modeldir import reference_kind, resolve_model


def _tiny():
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


@pytest.fixture
def saved(tmp_path):
    from zoo.modeldir import attach_meta, write_model_dir

    model = _tiny()
    attach_meta(model, {"arch": "tiny", "task": "classification", "labels": ["a", "b"], "input_shape": [8, 8, 3]})
    return write_model_dir(model, tmp_path / "run")


def test_reference_kinds(tmp_path, saved):
    assert reference_kind("resnet50") == "name"
    assert reference_kind("no_such_model") == "name"  # the registry says what is wrong with a name
    assert reference_kind(saved) == reference_kind(str(saved)) == "saved"
    assert reference_kind(saved / "model.keras") == "saved"
    assert reference_kind(_tiny()) == "model"
    assert reference_kind("hub:https://tfhub.dev/x/1", hub=True) == "hub"


@pytest.mark.parametrize("ref, message", [
    ("missing/model.keras", "does not exist"),
    ("./nowhere", "does not exist"),
    ("plain.keras", "does not exist"),
    ("folder", "not a zoo model directory"),
    ("notes.txt", "neither a model directory nor a .keras file"),
    ("hub:https://tfhub.dev/x/1", "fine-tune it first"),
])
def test_bad_references_fail_alike_before_loading_anything(tmp_path, monkeypatch, ref, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UsageError, match=message):
        reference_kind(ref)
    with pytest.raises(UsageError, match=message):
        resolve_model(ref)


def test_every_consumer_uses_the_one_resolution(tmp_path, monkeypatch):
    """predict, evaluate, export, bench and finetune reject the same bad reference with the same message."""
    import zoo
    from zoo.benchmark import bench

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "a").mkdir(parents=True)
    ref = "runs/missing"  # a path with a typo: not a registry name
    calls = {
        "predict": lambda: zoo.predict("x.jpg", model=ref),
        "evaluate": lambda: zoo.evaluate(ref, tmp_path / "data"),
        "export": lambda: zoo.export(ref, format="onnx", out=tmp_path / "m.onnx"),
        "bench": lambda: bench(ref),
        "finetune": lambda: zoo.finetune(ref, tmp_path / "data", out=tmp_path / "out", epochs=1),
    }
    messages = {}
    for name, call in calls.items():
        with pytest.raises(UsageError) as info:
            call()
        messages[name] = str(info.value)
    assert len(set(messages.values())) == 1, messages
    assert "runs/missing does not exist" in messages["predict"]
    assert not (tmp_path / "out").exists()


def test_weights_apply_to_registry_names_only(saved):
    model = _tiny()
    for ref in (saved, model):
        with pytest.raises(UsageError, match="registry names only"):
            resolve_model(ref, weights="imagenet")
        with pytest.raises(UsageError, match="registry names only"):
            resolve_model(ref, input_shape=(16, 16, 3))
    loaded, meta = resolve_model(saved, weights="none")  # "none" asks for nothing a saved model lacks
    assert meta["labels"] == ["a", "b"] and meta["task"] == "classification"


def test_a_plain_keras_model_gets_the_given_task():
    model = _tiny()
    assert resolve_model(model)[1]["task"] == "classification"
    assert resolve_model(model, task="segmentation")[1]["task"] == "segmentation"


def test_registry_names_get_the_default_weights(monkeypatch):
    import zoo
    from zoo.registry import default_weights

    seen = {}

    def fake_build(name, *, weights=None, input_shape=None):
        seen.update(name=name, weights=weights, input_shape=input_shape)
        return _tiny()

    monkeypatch.setattr(zoo, "build", fake_build)
    resolve_model("resnet50")
    assert seen == {"name": "resnet50", "weights": default_weights("resnet50"), "input_shape": None}
    resolve_model("resnet18", weights="tv_in1k", input_shape=(64, 64, 3))
    assert seen == {"name": "resnet18", "weights": "tv_in1k", "input_shape": (64, 64, 3)}
    with pytest.warns(UserWarning, match="random weights"):
        resolve_model("yolo_lite")
    assert seen["weights"] is None
