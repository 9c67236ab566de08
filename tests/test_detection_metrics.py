"""Detection metrics: VOC07 11-point AP against a hand-computed case, pycocotools on known answers."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.tasks.detection.metrics import coco_map, detection_metrics, voc07_ap

A = [10, 10, 50, 50]
B = [100, 100, 140, 160]
C = [200, 20, 260, 80]


def _gt(boxes, classes, ignore=None):
    return (np.array(boxes, float).reshape(-1, 4), np.array(classes), np.array(ignore or [False] * len(classes)))


def _det(boxes, scores, classes):
    return (np.array(boxes, float).reshape(-1, 4), np.array(scores, float), np.array(classes))


def test_voc07_ap_hand_computed():
    # 3 positives. Ranked: TP (A), FP (nothing there), TP (B), FP (duplicate of B).
    # recall 1/3, 1/3, 2/3, 2/3; precision 1, 1/2, 2/3, 1/2.
    # 11-point: t = 0, .1, .2, .3 -> 1; t = .4, .5, .6 -> 2/3; t >= .7 -> 0.  AP = (4 + 3 * 2/3) / 11 = 6/11.
    gts = [_gt([A], [0]), _gt([B, C], [0, 0])]
    dets = [_det([A], [0.9], [0]), _det([[300, 300, 320, 320], B, [101, 101, 141, 161]], [0.8, 0.7, 0.6], [0, 0, 0])]
    assert voc07_ap(gts, dets, 0) == pytest.approx(6 / 11)


def test_voc07_ap_difficult_boxes_are_neither_tp_nor_fp():
    gts = [_gt([A, B], [0, 0], [False, True])]
    dets = [_det([B, A], [0.9, 0.8], [0, 0])]
    assert voc07_ap(gts, dets, 0) == pytest.approx(1.0)
    assert voc07_ap(gts, dets, 1) is None  # no ground truth of class 1


def test_voc07_ap_wrong_class_and_low_iou():
    gts = [_gt([A], [0])]
    assert voc07_ap(gts, [_det([A], [0.9], [1])], 0) == 0.0
    assert voc07_ap(gts, [_det([[30, 30, 70, 70]], [0.9], [0])], 0) == 0.0


def test_pycocotools_perfect_detections_give_one():
    gts = [_gt([A, B], [0, 1]), _gt([C], [2])]
    dets = [_det([A, B], [0.9, 0.8], [0, 1]), _det([C], [0.7], [2])]
    result = coco_map(gts, dets, ["a", "b", "c"])
    assert result["map"] == pytest.approx(1.0) and result["map50"] == pytest.approx(1.0)
    assert result["ap"] == {"a": pytest.approx(1.0), "b": pytest.approx(1.0), "c": pytest.approx(1.0)}


def test_pycocotools_iou_062_counts_at_three_of_ten_thresholds():
    # Shifted box with IoU 0.62 to its ground truth: a hit at IoU .50, .55, .60 only -> mAP 0.3.
    gt = [0, 0, 100, 100]
    shift = 100 * (1 - 0.62) / (1 + 0.62)  # IoU of two 100x100 boxes offset by d in x: (100-d)/(100+d)
    det = [shift, 0, 100 + shift, 100]
    result = coco_map([_gt([gt], [0])], [_det([det], [0.9], [0])], ["a"])
    assert result["map50"] == pytest.approx(1.0)
    assert result["map"] == pytest.approx(0.3)


def test_pycocotools_missing_class_and_no_detections():
    gts = [_gt([A, B], [0, 1])]
    result = coco_map(gts, [_det([A], [0.9], [0])], ["a", "b", "unused"])
    assert result["map"] == pytest.approx(0.5)  # class "unused" has no ground truth: left out of the mean
    assert result["ap"]["unused"] is None and result["ap"]["b"] == 0.0
    empty = coco_map(gts, [_det([], [], [])], ["a", "b"])
    assert empty["map"] == 0.0 and empty["ap"] == {"a": 0.0, "b": 0.0}


def test_detection_metrics_keys():
    gts = [_gt([A], [0])]
    result = detection_metrics(gts, [_det([A], [0.9], [0])], ["a", "b"])
    assert result["map"] == pytest.approx(1.0) and result["map50"] == pytest.approx(1.0)
    assert result["voc07_map"] == pytest.approx(1.0)
    assert result["per_class_ap"]["a"] == {"ap": pytest.approx(1.0), "ap50": pytest.approx(1.0),
                                        "voc07_ap": pytest.approx(1.0), "gt": 1}
    assert result["per_class_ap"]["b"]["gt"] == 0 and result["per_class_ap"]["b"]["voc07_ap"] is None
