"""Exports meet the tools around them: a missing optional package is one line naming the extra."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner


@pytest.mark.parametrize("hidden", ["tf2onnx", "onnx", "onnxruntime"])
def test_onnx_export_without_its_packages_names_the_extra(tmp_path, monkeypatch, hidden):
    import zoo
    from zoo.cli import cli
    from zoo.modeldir import write_model_dir

    run = write_model_dir(zoo.build("lenet5"), tmp_path / "run")
    monkeypatch.setitem(sys.modules, hidden, None)  # `import hidden` now raises ImportError
    result = CliRunner().invoke(cli, ["export", str(run), "--format", "onnx", "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'zoo[export]'" in lines[0] and hidden in lines[0], lines
    assert not (tmp_path / "m.onnx").exists()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A LeNet-5 fine-tuned on real digits (scikit-learn's, as PNGs), its model directory, and
    its SavedModel, .tflite and .onnx exports."""
    from helpers import write_digits

    import zoo

    root = tmp_path_factory.mktemp("exports")
    data = write_digits(root / "digits", per_class=4)
    run = root / "run"
    zoo.finetune("lenet5", data, out=run, weights="fashion_mnist", epochs=1, batch_size=8, verbose=0)
    paths = {"dir": run}
    for fmt, name in (("savedmodel", "saved"), ("tflite", "m.tflite"), ("onnx", "m.onnx")):
        paths[fmt] = zoo.export(run, format=fmt, out=root / name)
    return data, paths


def _top1(records):
    return [(r["source"], r["predictions"][0]["label"]) for r in records]


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite", "onnx"])
def test_predict_and_evaluate_take_each_export_like_the_model_directory(exported, fmt):
    import zoo

    data, paths = exported
    images = sorted(str(p) for p in data.rglob("*.png"))[::3]
    want = zoo.predict(images, model=paths["dir"], top_k=3)
    got = zoo.predict(images, model=paths[fmt], top_k=3)
    assert all(r["ok"] and r["task"] == "classification" for r in got)
    assert _top1(got) == _top1(want)
    for w, g in zip(want, got):
        assert g["predictions"][0]["score"] == pytest.approx(w["predictions"][0]["score"], abs=1e-4)
    scores = zoo.evaluate(paths[fmt], data)
    assert scores["accuracy"] == pytest.approx(zoo.evaluate(paths["dir"], data)["accuracy"])


def test_cli_predict_on_a_tflite_export(exported):
    import json

    from zoo.cli import cli

    data, paths = exported
    image = str(sorted(data.rglob("*.png"))[0])
    result = CliRunner().invoke(cli, ["predict", image, "--model", str(paths["tflite"]), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.splitlines()[0])
    assert record["ok"] and record["predictions"][0]["label"] in [str(d) for d in range(10)]


def test_exports_have_stable_names(exported):
    import onnxruntime as ort
    import tensorflow as tf

    from zoo.exporting import _interpreter

    _, paths = exported
    loaded = tf.saved_model.load(str(paths["savedmodel"]))
    serving = loaded.signatures["serving_default"]
    assert list(serving.structured_input_signature[1]) == ["image"]
    assert list(serving.structured_outputs) == ["predictions"]
    assert [i.name for i in ort.InferenceSession(str(paths["onnx"])).get_inputs()] == ["image"]
    assert list(_interpreter(paths["tflite"]).get_signature_runner().get_input_details()) == ["image"]


def test_savedmodel_works_with_tf_hub_and_encoded_bytes(exported):
    import numpy as np
    import tensorflow as tf
    import tensorflow_hub as hub

    import zoo

    data, paths = exported
    model = zoo.load_model(paths["dir"])
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 1)).astype("float32")
    want = np.asarray(model(x))
    np.testing.assert_allclose(hub.load(str(paths["savedmodel"]))(x).numpy(), want, atol=1e-5)
    pytest.importorskip("tf_keras", reason="hub.KerasLayer needs tf_keras under Keras 3")
    np.testing.assert_allclose(hub.KerasLayer(str(paths["savedmodel"]))(x).numpy(), want, atol=1e-5)
    # TF Serving's REST {"b64": ...}: a batch of encoded images, decoded inside the graph.
    png = tf.io.encode_png(tf.constant(np.round(x[0]).astype("uint8")))
    out = tf.saved_model.load(str(paths["savedmodel"])).signatures["serving_bytes"](image_bytes=tf.stack([png]))
    np.testing.assert_allclose(out["predictions"].numpy()[0], np.asarray(model(np.round(x[:1])))[0], atol=1e-5)


def test_uint8_input_export(exported, tmp_path):
    import zoo
    from zoo.exporting import _interpreter

    data, paths = exported
    out = zoo.export(paths["dir"], format="tflite", out=tmp_path / "u8.tflite", input_dtype="uint8")
    detail = _interpreter(out).get_signature_runner().get_input_details()["image"]
    assert detail["dtype"].__name__ == "uint8"
    images = sorted(str(p) for p in data.rglob("*.png"))[:4]
    assert _top1(zoo.predict(images, model=out)) == _top1(zoo.predict(images, model=paths["dir"]))


def test_cli_evaluate_on_an_onnx_export(exported):
    import json

    from zoo.cli import cli

    data, paths = exported
    result = CliRunner().invoke(cli, ["evaluate", str(paths["onnx"]), str(data), "--json"])
    assert result.exit_code == 0, result.output
    assert 0 <= json.loads(result.stdout)["accuracy"] <= 1
