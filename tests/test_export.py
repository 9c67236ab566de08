"""zoo.export: each format written atomically and run by its own runtime, parity with Keras."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import LABELS, with_meta, write_images


def small_model(seed=0, width=8):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(width, 3, padding="same")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(width, activation="relu")(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    # non-trivial BN statistics, so a wrong export cannot match by accident
    bn = model.layers[3]
    bn.moving_mean.assign(np.linspace(-0.2, 0.2, width).astype("float32"))
    bn.moving_variance.assign(np.linspace(0.5, 1.5, width).astype("float32"))
    return with_meta(model)


def _keras(model, x):
    return np.asarray(model(x))


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite", "onnx"])
def test_float32_parity_each_format(tmp_path, fmt):
    import zoo
    from zoo.errors import UsageError
    from zoo.exporting import export_with_report

    model = small_model()
    out = tmp_path / {"savedmodel": "sm", "tflite": "m.tflite", "onnx": "m.onnx"}[fmt]
    path, report = export_with_report(model, format=fmt, out=out)
    assert path == out and out.exists() and report["passed"] and report["max_abs_diff"] <= 1e-4
    assert report["top1_agreement"] == 1.0
    # no temp files left behind; a .tflite's labels and preprocessing travel in a file beside it
    beside = [f"{out.name}.metadata.json"] if fmt == "tflite" else []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, *beside])
    # an independent run of the artefact on new inputs agrees with Keras
    x = np.random.default_rng(5).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    want = _keras(model, x)
    if fmt == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(out))  # kept alive: its variables die with it
        got = loaded.serve(tf.constant(x)).numpy()
        assert json.loads((out / "metadata.json").read_text())["labels"] == LABELS
    elif fmt == "onnx":
        import onnx
        import onnxruntime as ort

        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
        assert json.loads(props["zoo.labels"]) == LABELS
    else:
        from zoo.exporting import _run_tflite

        got = _run_tflite(out, x)[0]
    np.testing.assert_allclose(got, want, atol=1e-4)
    with pytest.raises(UsageError, match="--overwrite"):
        zoo.export(model, format=fmt, out=out)  # an existing artefact is replaced only when asked
    assert zoo.export(model, format=fmt, out=out, overwrite=True) == out  # overwriting a previous export works


def test_tflite_float16_and_int8(tmp_path):
    from zoo.exporting import export_with_report

    model = small_model(width=64)  # enough weights for float16 to halve the file
    _, f16 = export_with_report(model, format="tflite", out=tmp_path / "f16.tflite", quantize="float16")
    _, f32 = export_with_report(model, format="tflite", out=tmp_path / "f32.tflite")
    assert f16["passed"] and f16["size_bytes"] < f32["size_bytes"]
    write_images(tmp_path / "calib", 8)
    _, i8 = export_with_report(model, format="tflite", out=tmp_path / "i8.tflite", quantize="int8",
                               calibration=tmp_path / "calib")
    assert i8["passed"] and i8["samples"] == 8 and i8["max_abs_diff"] > 0  # really quantised


def test_parity_failure_leaves_nothing(tmp_path):
    from zoo.exporting import ParityError, compare, export

    ref = [np.array([[0.1, 0.9]])]
    assert compare(ref, [np.array([[0.1, 0.9]])])["passed"]
    report = compare(ref, [np.array([[0.6, 0.4]])])
    assert not report["passed"] and report["max_abs_diff"] == pytest.approx(0.5) and report["top1_agreement"] == 0
    with pytest.raises(ParityError, match="differs"):
        export(small_model(), format="tflite", out=tmp_path / "m.tflite", quantize="float16", tolerance=0.0)
    assert list(tmp_path.iterdir()) == []


def test_usage_errors(tmp_path):
    from zoo.exporting import export

    model = small_model()
    for kwargs, match in [(dict(format="pt"), "format"), (dict(format="onnx", quantize="float16"), "TFLite"),
                          (dict(format="tflite", quantize="int8"), "calibration"),
                          (dict(format="tflite", quantize="int4"), "quantize")]:
        with pytest.raises(ValueError, match=match):
            export(model, out=tmp_path / "x", **kwargs)


def test_cli_export(tmp_path):
    from zoo.cli import cli
    from zoo.modeldir import write_model_dir

    run = write_model_dir(small_model(), tmp_path / "run")
    result = CliRunner().invoke(cli, ["export", str(run), "--format", "onnx", "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m.onnx").exists() and "max abs difference" in result.output
    result = CliRunner().invoke(cli, ["export", str(run), "--format", "onnx", "--quantize", "int8",
                                      "--out", str(tmp_path / "q.onnx")])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
