"""End to end: `zoo finetune yolo_lite` from scratch on synthetic shapes, then evaluate and predict.

The full-size check (240 images at 224 px to mAP@0.5 >= 0.8) is scripts/train_shapes_detection.py;
this is its small CI version: tiny images, a short run, and a bar random weights cannot pass.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import shapes_module

SIZE = 160
BAR = 0.45  # mAP@0.5 on held-out images (0.64 measured); random weights score ~0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import zoo

    root = tmp_path_factory.mktemp("shapes")
    shapes = shapes_module()
    train = shapes.make_shapes(root / "train", images=160, size=SIZE, seed=0, max_objects=2)
    val = shapes.make_shapes(root / "val", images=40, size=SIZE, seed=1, max_objects=2)
    out = root / "run"
    zoo.finetune("yolo_lite", train, out=out, epochs=24, weights=None, image_size=SIZE, batch_size=8, lr=3e-3,
                 val=str(val), early_stopping=None, verbose=0)
    return out, val


@pytest.mark.slow
def test_learns_shapes_from_scratch(trained):
    import zoo

    out, val = trained
    scores = zoo.evaluate(out, val)
    assert scores["task"] == "detection"
    assert scores["map50"] >= BAR, scores
    assert 0 < scores["map"] < scores["map50"]
    assert set(scores["per_class_ap"]) == {"circle", "square", "triangle"}
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["labels"] == ["circle", "square", "triangle"] and meta["task"] == "detection"
    assert np.asarray(meta["anchors"]).shape == (5, 2) and meta["input_shape"] == [SIZE, SIZE, 3]
    assert meta["metrics"]["val_map50"] >= BAR
    for name in ("model.keras", "history.csv", "curves.png", "detections.png"):
        assert (out / name).exists(), name


@pytest.mark.slow
def test_random_weights_fail_the_bar(trained):
    import zoo
    from zoo.modeldir import attach_meta, read_meta

    out, val = trained
    meta = read_meta(out)
    model = zoo.build("yolo_lite", input_shape=(SIZE, SIZE, 3), num_classes=3, anchors=meta["anchors"])
    attach_meta(model, {**meta, "metrics": {}})
    assert zoo.evaluate(model, val)["map50"] < 0.1


@pytest.mark.slow
def test_predict_and_evaluate_cli(trained, tmp_path):
    from click.testing import CliRunner

    from zoo.cli import cli

    out, val = trained
    images = sorted((val / "JPEGImages").glob("*.jpg"))[:3]
    runner = CliRunner()
    result = runner.invoke(cli, ["predict", *map(str, images), "--model", str(out), "--format", "jsonl",
                                 "--conf", "0.3", "--max-det", "5", "--save-dir", str(tmp_path / "drawn")])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [r["source"] for r in records] == [str(p) for p in images]
    assert any(r["detections"] for r in records)
    for r in records:
        assert r["ok"] and r["task"] == "detection" and len(r["detections"]) <= 5
        for d in r["detections"]:
            assert d["label"] in ("circle", "square", "triangle") and d["score"] >= 0.3
            x0, y0, x1, y1 = d["box"]
            assert 0 <= x0 < x1 <= SIZE and 0 <= y0 < y1 <= SIZE
    assert sorted(p.name for p in (tmp_path / "drawn").iterdir()) == [p.stem + ".png" for p in images]
    result = runner.invoke(cli, ["evaluate", str(out), str(val), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output.strip().splitlines()[-1])
    assert {"map", "map50", "voc07_map", "per_class_ap"} <= set(scores)
