"""End to end: `zoo finetune fcn8s` from scratch on synthetic shapes, then evaluate and predict.

The full-size check (200 images at 96 px to held-out mIoU >= 0.85) is
scripts/train_shapes_segmentation.py; this is its small CI version: small images, two shape
classes, a short run, and a bar that an untrained model cannot pass.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SIZE = 48
BAR = 0.5  # held-out mIoU (background, square, circle); all-background scores ~0.29, random weights less


def _shapes():
    spec = importlib.util.spec_from_file_location("make_shapes_segmentation", ROOT / "scripts" / "make_shapes_segmentation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import zoo

    pytest.importorskip("zoo.models.resnet", reason="needs the resnet backbone")
    root = tmp_path_factory.mktemp("seg")
    shapes = _shapes()
    train = shapes.make_shapes(root / "train", images=48, size=SIZE, seed=0, shapes=2, max_objects=2)
    test = shapes.make_shapes(root / "test", images=24, size=SIZE, seed=1, shapes=2, max_objects=2)
    out = root / "run"
    zoo.finetune("fcn8s", train, out=out, epochs=20, backbone="resnet18", image_size=SIZE, weights="none",
                 batch_size=8, lr=3e-3, warmup=0.0, val_split=0.0, early_stopping=None, verbose=0,
                 task_options={"head_channels": 64, "dropout": 0.0})
    return out, test


@pytest.mark.slow
def test_learns_shapes_from_scratch(trained):
    import zoo

    out, test = trained
    scores = zoo.evaluate(out, test)
    assert scores["task"] == "segmentation" and scores["images"] == 24
    assert scores["miou"] >= BAR, scores
    assert set(scores["per_class_iou"]) == {"background", "square", "circle"}
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["labels"] == ["background", "square", "circle"] and meta["task"] == "segmentation"
    assert meta["input_shape"] == [SIZE, SIZE, 3] and meta["ignore_index"] == 255
    assert meta["preprocessing"]["resize"] == "squash"
    for name in ("model.keras", "history.csv", "curves.png"):
        assert (out / name).exists(), name


@pytest.mark.slow
def test_untrained_model_fails_the_bar(trained):
    import zoo
    from zoo.modeldir import attach_meta, read_meta

    out, test = trained
    meta = read_meta(out)
    model = zoo.build("fcn8s", input_shape=(SIZE, SIZE, 3), num_classes=3, backbone="resnet18", head_channels=64)
    attach_meta(model, meta)
    assert zoo.evaluate(model, test)["miou"] < 0.35


@pytest.mark.slow
def test_predict_writes_masks_at_the_original_size(trained, tmp_path):
    from PIL import Image

    import zoo
    from zoo.data.segmentation import read_mask

    out, test = trained
    big = tmp_path / "big.png"
    with Image.open(test / "images" / "000000.png") as im:
        im.resize((97, 61)).save(big)  # odd size, not the model's
    records = zoo.predict([big, tmp_path / "missing.png"], model=out, save_dir=tmp_path / "pred")
    assert records[0]["ok"] and not records[1]["ok"]
    mask = read_mask(records[0]["mask"])
    assert mask.shape == (61, 97)
    assert Path(records[0]["mask"]).name == "big_mask.png" and (tmp_path / "pred" / "big_overlay.png").exists()
    assert set(records[0]["classes"]) <= {"background", "square", "circle"}
    assert abs(sum(records[0]["classes"].values()) - 1) < 1e-4
    truth = read_mask(test / "masks" / "000000.png")
    resized = np.asarray(Image.fromarray(truth).resize((97, 61), Image.Resampling.NEAREST))
    assert (mask == resized).mean() > 0.8  # the trained model finds the shapes in the resized image too
