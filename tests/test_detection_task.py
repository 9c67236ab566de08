"""The detection TASK: letterbox prepare, postprocess to original pixels, drawing, `--opt` options."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from helpers import raw_from_targets, shapes_module
from zoo.errors import UsageError
from zoo.tasks.detection import TASK
from zoo.tasks.detection.boxes import encode_targets
from zoo.tasks.detection.predict import thresholds

ANCHORS = [[0.1, 0.1], [0.3, 0.2], [0.2, 0.4]]
META = {"task": "detection", "input_shape": [96, 96, 3], "labels": ["cat", "dog", "bird"], "anchors": ANCHORS,
        "preprocessing": {"resize": "letterbox"}}


def _raw_for(boxes_px, classes, image_hw, confidence=20.0):
    """The raw head output that detects `boxes_px` (original pixels) once the image is letterboxed to 96."""
    h, w = image_hw
    r = min(96 / h, 96 / w)
    top, left = (96 - round(h * r)) // 2, (96 - round(w * r)) // 2
    norm = (np.asarray(boxes_px, float) * r + [left, top, left, top]) / 96
    targets = encode_targets(norm, np.asarray(classes), np.asarray(ANCHORS), grid=3)
    return raw_from_targets(targets, np.asarray(ANCHORS), 3, confidence)[None]


def test_prepare_letterboxes_to_the_model_input():
    image = np.full((50, 100, 3), 200, np.uint8)
    array, info = TASK.prepare(image, META)
    assert array.shape == (96, 96, 3) and array.dtype == np.uint8
    assert info["pad"] == (24, 0) and info["orig_size"] == (50, 100)
    assert (array[:20] == 114).all() and (array[30:60] == 200).all()


def test_postprocess_returns_boxes_in_original_pixels():
    image = np.zeros((50, 100, 3), np.uint8)
    boxes = [[10, 5, 40, 30], [60, 20, 95, 48]]
    _, info = TASK.prepare(image, META)
    records = TASK.postprocess(_raw_for(boxes, [1, 2], (50, 100)), [info], META, {})
    dets = sorted(records[0]["detections"], key=lambda d: d["box"][0])
    assert [d["label"] for d in dets] == ["dog", "bird"] and [d["index"] for d in dets] == [1, 2]
    np.testing.assert_allclose([d["box"] for d in dets], boxes, atol=0.05)
    assert all(0.99 < d["score"] <= 1.0 for d in dets)


def test_postprocess_options_conf_and_max_det():
    image_hw = (96, 96)
    boxes = [[5, 5, 30, 30], [50, 50, 90, 90]]
    raw = _raw_for(boxes, [0, 0], image_hw, confidence=1.0)  # scores ~ sigmoid(1) * softmax ~ 0.4
    _, info = TASK.prepare(np.zeros((96, 96, 3), np.uint8), META)
    assert len(TASK.postprocess(raw, [info], META, {"conf": 0.3})[0]["detections"]) == 2
    assert len(TASK.postprocess(raw, [info], META, {"conf": 0.9})[0]["detections"]) == 0
    assert len(TASK.postprocess(raw, [info], META, {"conf": 0.3, "max_det": 1})[0]["detections"]) == 1
    stored = {**META, "detection": {"conf": 0.9}}
    assert len(TASK.postprocess(raw, [info], stored, {})[0]["detections"]) == 0  # thresholds saved with the model


@pytest.mark.parametrize("options, match", [({"conf": 1.5}, "conf"), ({"iou": -0.1}, "iou"), ({"max_det": 0}, "max_det")])
def test_bad_thresholds_are_usage_errors(options, match):
    with pytest.raises(UsageError, match=match):
        thresholds(options)


def test_head_not_matching_the_anchors_is_a_usage_error():
    _, info = TASK.prepare(np.zeros((96, 96, 3), np.uint8), META)
    with pytest.raises(UsageError, match="anchors"):
        TASK.postprocess(np.zeros((1, 3, 3, 25)), [info], META, {})


def test_save_draws_boxes_in_class_colours(tmp_path):
    from zoo.tasks.detection.draw import class_colour

    image = np.full((80, 120, 3), 255, np.uint8)
    record = {"source": str(tmp_path / "street.jpg"), "detections": [
        {"label": "cat", "index": 0, "score": 0.9, "box": [10, 30, 50, 70]},
        {"label": "dog", "index": 1, "score": 0.8, "box": [70, 30, 110, 70]}]}
    TASK.save(record, image, META, tmp_path)
    drawn = np.asarray(Image.open(tmp_path / "street.png").convert("RGB"))
    assert drawn.shape == (80, 120, 3)
    assert class_colour(0) != class_colour(1)
    assert tuple(drawn[60, 10]) == class_colour(0)  # left edge of the cat box
    assert tuple(drawn[60, 110]) == class_colour(1)  # right edge of the dog box
    TASK.save(record, image, META, tmp_path)
    assert (tmp_path / "street_1.png").exists()  # never overwrites another input's artefact


def test_finetune_refuses_non_detection_data_before_training(tmp_path, capfd):
    from zoo.cli import main

    (tmp_path / "cats").mkdir()
    for data, match in ((tmp_path, "not a detection dataset"), (tmp_path / "missing", "not a folder")):
        with pytest.raises(SystemExit) as exit_info:
            main(["finetune", "yolo_lite", str(data), "--out", str(tmp_path / "out"), "--epochs", "1"])
        assert exit_info.value.code == 2
        err = capfd.readouterr().err
        assert match in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_task_options_are_typed_checked_and_name_the_valid_keys():
    opts = TASK.parse_options({"anchors": "3", "mosaic": "0", "batch_norm": "true", "backbone_weights": "none"})
    assert (opts.anchors, opts.mosaic, opts.batch_norm, opts.backbone_weights) == (3, 0.0, True, None)
    assert TASK.parse_options({}).thresholds() == {"conf": 0.25, "iou": 0.45, "max_det": 100}
    with pytest.raises(UsageError, match="Valid: .*anchors"):
        TASK.parse_options({"anchor": 3})
    for bad in ({"anchors": 0}, {"mosaic": 1.5}, {"xy_loss": "l1"}, {"obj_prior": 1}, {"lambda_obj": -1}):
        with pytest.raises(UsageError, match=next(iter(bad))):
            TASK.parse_options(bad)


def test_finetune_reads_the_task_options(tmp_path):
    import json

    import zoo

    data = shapes_module().make_shapes(tmp_path / "voc", images=8, size=64, seed=0, max_objects=2)
    with pytest.raises(UsageError, match="anchor"):
        zoo.finetune("yolo_lite", data, out=tmp_path / "bad", epochs=1, task_options={"anchor": 3})
    assert not (tmp_path / "bad").exists()
    out = tmp_path / "run"
    zoo.finetune("yolo_lite", data, out=out, epochs=1, weights=None, image_size=64, batch_size=4, verbose=0,
                 task_options={"anchors": "3", "conf": "0.3", "mosaic": "0"})
    meta = json.loads((out / "metadata.json").read_text())
    assert np.asarray(meta["anchors"]).shape == (3, 2)
    assert meta["detection"] == {"conf": 0.3, "iou": 0.45, "max_det": 100}
    assert meta["training"]["options"]["task_options"]["anchors"] == 3
