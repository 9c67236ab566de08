"""zoo.bench and `zoo bench`: sane, self-consistent figures for tiny models in every mode."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

import keras

from zoo.benchmark import bench, cpu_peak
from zoo.errors import UsageError
from zoo.modeldir import attach_meta

L = keras.layers


def _tiny(classes=3):
    inp = keras.Input((16, 16, 3))
    x = L.Rescaling(1 / 255)(inp)
    x = L.Conv2D(4, 3, use_bias=False, name="conv")(x)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU()(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dropout(0.2)(x)
    model = keras.Model(inp, L.Dense(classes, activation="softmax", name="head")(x), name="tiny")
    attach_meta(model, {"arch": "tiny", "task": "classification", "labels": ["a", "b", "c"][:classes],
                        "input_shape": [16, 16, 3], "preprocessing": {"in_model": True, "resize": "squash"}})
    return model


def test_cpu_peak_formula_matches_cpuinfo():
    peak = cpu_peak()
    assert peak["peak_flops"] == pytest.approx(
        peak["cores"] * peak["clock_mhz"] * 1e6 * peak["vector_bits"] / 32 * peak["fma_units"] * 2)
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if " avx512f" in text:
        assert peak["vector_bits"] == 512
    elif " avx2" in text:
        assert peak["vector_bits"] == 256
    assert 1 <= peak["cores"] <= (len(__import__("os").sched_getaffinity(0)))


def test_forward_figures_are_consistent(tmp_path):
    from zoo.macs import count_macs

    model = _tiny()
    out = tmp_path / "bench.json"
    r = bench(model, mode="forward", batch_size=4, steps=3, warmup=1, json=out)
    assert r["mode"] == "forward" and r["batch_size"] == 4 and r["optimized"] is True
    assert r["image_size"] == [16, 16, 3] and r["task"] == "classification"
    assert r["ms_per_batch_min"] <= r["ms_per_batch"]
    assert r["images_per_s"] == pytest.approx(4 / (r["ms_per_batch"] / 1000), rel=1e-2)
    assert r["macs_per_image"] == count_macs(model) > 0
    assert r["macs_per_s"] == pytest.approx(r["macs_per_image"] * r["images_per_s"], rel=1e-3)
    assert r["peak_fraction"] == pytest.approx(2 * r["macs_per_s"] / r["peak_flops"], rel=1e-2, abs=1e-4)
    assert 0 < r["peak_rss_mb"] < 1e6
    assert json.loads(out.read_text()) == r


def test_train_mode_really_trains():
    model = _tiny()
    before = [np.array(w) for w in model.get_weights()]
    r = bench(model, mode="train", batch_size=4, steps=2, warmup=1)
    assert r["mode"] == "train" and r["images_per_s"] > 0
    # three MACs per forward MAC: forward, gradient w.r.t. inputs, gradient w.r.t. weights
    assert r["macs_per_s"] == pytest.approx(3 * r["macs_per_image"] * r["images_per_s"], rel=1e-3)
    after = model.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(before, after))


def test_predict_mode_classification_from_files():
    r = bench(_tiny(), mode="predict", batch_size=2, steps=2, warmup=1)
    assert r["mode"] == "predict" and r["batch_size"] == 2 and r["images_per_s"] > 0


def test_predict_mode_detection_batch_one():
    r = bench("yolo_lite", mode="predict", image_size=64, steps=2, warmup=1)
    assert r["task"] == "detection" and r["batch_size"] == 1 and r["images_per_s"] > 0
    assert r["image_size"][:2] == [64, 64]


@pytest.mark.parametrize("kwargs, match", [
    ({"mode": "backward"}, "mode"),
    ({"steps": 0}, "steps"),
    ({"batch_size": 0}, "batch_size"),
    ({"image_size": 32}, "registry names"),
    ({"precision": "float8"}, "precision"),
])
def test_usage_errors(kwargs, match):
    with pytest.raises(UsageError, match=match):
        bench(_tiny(), **kwargs)


def test_unknown_name_fails_before_tensorflow():
    import subprocess
    import sys

    code = ("import sys\nfrom zoo.benchmark import bench\ntry:\n    bench('resnet05')\nexcept ValueError as e:\n"
            "    print('resnet50' in str(e), 'tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


def test_cli_json_and_usage_error(tmp_path):
    from click.testing import CliRunner

    from zoo.cli import cli
    from zoo.modeldir import save_model

    path = save_model(_tiny(), tmp_path / "tiny.keras")
    res = CliRunner().invoke(cli, ["bench", str(path), "--batch-size", "2", "--steps", "2", "--warmup", "1", "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.output.strip().splitlines()[-1])
    assert r["batch_size"] == 2 and math.isfinite(r["images_per_s"]) and r["images_per_s"] > 0
    # what this process's TensorFlow really runs: conftest imports zoo first, which turns oneDNN on
    assert r["threads"]["onednn"] is (os.environ["TF_ENABLE_ONEDNN_OPTS"] != "0")
    res = CliRunner().invoke(cli, ["bench", str(path), "--mode", "sideways"])
    assert res.exit_code == 2
