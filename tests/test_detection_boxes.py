"""YOLOv2 box arithmetic: encode/decode round trip, NMS, k-means anchors, the loss at a perfect prediction."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import raw_from_targets
from zoo.errors import UsageError
from zoo.tasks.detection.boxes import box_iou, decode, detect, encode_targets, kmeans_anchors, nms, wh_iou

ANCHORS = np.array([[0.1, 0.1], [0.3, 0.2], [0.2, 0.4]])


def test_box_iou_known_values():
    a = np.array([[0, 0, 2, 2]])
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]])
    np.testing.assert_allclose(box_iou(a, b), [[1 / 7, 1.0, 0.0]])


def test_encode_decode_round_trip():
    boxes = np.array([[0.10, 0.12, 0.22, 0.20], [0.40, 0.35, 0.75, 0.62], [0.05, 0.55, 0.30, 0.97]])
    classes = np.array([2, 0, 1])
    targets = encode_targets(boxes, classes, ANCHORS, grid=7)
    assert targets.shape == (7, 7, 3, 6)
    assert targets[..., 4].sum() == 3
    raw = raw_from_targets(targets, ANCHORS, num_classes=3)[None]
    out_boxes, scores, out_classes = detect(raw, ANCHORS, conf=0.5, iou=0.45, max_det=10)[0]
    assert len(out_boxes) == 3
    order = np.argsort(out_boxes[:, 0])
    np.testing.assert_allclose(out_boxes[order], boxes[np.argsort(boxes[:, 0])], atol=1e-5)
    np.testing.assert_array_equal(out_classes[order], classes[np.argsort(boxes[:, 0])])
    assert (scores > 0.99).all()


def test_encode_assigns_best_anchor_and_cell():
    # A wide box centred in cell (row 3, col 1) of a 7x7 grid goes to the wide anchor (index 1).
    box = np.array([[0.10, 0.45, 0.40, 0.62]])
    targets = encode_targets(box, np.array([0]), ANCHORS, grid=7)
    assert list(zip(*np.nonzero(targets[..., 4]))) == [(3, 1, 1)]


def test_encode_two_boxes_in_one_cell_use_two_anchors():
    boxes = np.array([[0.40, 0.40, 0.60, 0.60], [0.42, 0.41, 0.58, 0.61]])
    targets = encode_targets(boxes, np.array([0, 1]), ANCHORS, grid=7)
    assert targets[..., 4].sum() == 2


def test_decode_rejects_head_that_does_not_fit_anchors():
    with pytest.raises(UsageError, match="anchors"):
        decode(np.zeros((1, 7, 7, 25)), ANCHORS)


def test_nms_suppresses_overlaps_and_keeps_order():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    keep = nms(boxes, scores, iou=0.5)
    assert keep.tolist() == [3, 2]


def test_nms_is_class_aware():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.7])
    assert nms(boxes, scores, iou=0.5, classes=np.array([0, 1, 0])).tolist() == [0, 1]
    assert nms(boxes, scores, iou=0.5).tolist() == [0]


def test_nms_max_det_and_empty():
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(10)], dtype=np.float32)
    assert len(nms(boxes, np.linspace(1, 0.1, 10), iou=0.5, max_det=4)) == 4
    assert nms(np.zeros((0, 4)), np.zeros(0)).shape == (0,)


@pytest.mark.parametrize("n", [200, 1500])  # the IoU-matrix path and the row-by-row path for many boxes
def test_nms_greedy_invariants_on_random_boxes(n):
    # Greedy NMS invariant: no two kept boxes overlap above the threshold, and every dropped box
    # overlaps a higher-scoring kept box above it.
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100 * np.sqrt(n / 200), (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (n, 2))], axis=1).astype(np.float32)
    scores = rng.uniform(size=n)
    keep = nms(boxes, scores, iou=0.4, max_det=10_000)
    assert (np.diff(scores[keep]) <= 0).all()
    ious = box_iou(boxes[keep], boxes[keep])
    np.fill_diagonal(ious, 0)
    assert ious.max() <= 0.4 + 1e-6
    dropped = np.setdiff1d(np.arange(n), keep)
    for d in dropped:
        better = keep[scores[keep] >= scores[d]]
        assert box_iou(boxes[d][None], boxes[better]).max() > 0.4


def test_kmeans_recovers_clusters():
    rng = np.random.default_rng(1)
    centres = np.array([[0.05, 0.05], [0.2, 0.4], [0.5, 0.25]])
    wh = np.concatenate([c * rng.uniform(0.95, 1.05, (100, 2)) for c in centres])
    anchors, mean_iou = kmeans_anchors(wh, 3, seed=0)
    assert anchors.shape == (3, 2)
    # sorted by area, each near a true cluster centre
    np.testing.assert_allclose(anchors, centres[np.argsort(centres.prod(axis=1))], rtol=0.05)
    assert mean_iou > 0.9
    assert np.isclose(mean_iou, wh_iou(wh, anchors).max(axis=1).mean())


def test_kmeans_fewer_distinct_boxes_than_k_and_no_boxes():
    anchors, _ = kmeans_anchors(np.array([[0.1, 0.2], [0.1, 0.2], [0.3, 0.3]]), 5)
    assert len(anchors) == 2
    with pytest.raises(UsageError, match="no boxes"):
        kmeans_anchors(np.zeros((0, 2)), 5)


@pytest.mark.parametrize("xy_loss", ["bce", "mse"])
def test_loss_is_zero_at_a_perfect_prediction_and_positive_otherwise(xy_loss):
    from zoo.tasks.detection.loss import YOLOLoss

    boxes = np.array([[0.10, 0.12, 0.22, 0.20], [0.40, 0.35, 0.75, 0.62]])
    targets = encode_targets(boxes, np.array([2, 0]), ANCHORS, grid=7)[None]
    raw = raw_from_targets(targets[0], ANCHORS, num_classes=3, confidence=30.0)[None]
    loss = YOLOLoss(ANCHORS, 3, xy_loss=xy_loss)
    assert float(loss(targets, raw)) < 1e-5
    wrong_class = raw.copy().reshape(1, 7, 7, 3, 8)
    wrong_class[..., 5:] = wrong_class[..., [6, 7, 5]]
    assert float(loss(targets, wrong_class.reshape(1, 7, 7, 24))) > 1.0
    shifted = raw.copy().reshape(1, 7, 7, 3, 8)
    shifted[..., 0] += 1.0
    assert float(loss(targets, shifted.reshape(1, 7, 7, 24))) > 0.01
    assert float(loss(targets, np.zeros_like(raw))) > 1.0


def test_loss_ignores_good_predictions_of_other_slots():
    """A confident duplicate of a true box in another slot is not punished (IoU above ignore_thresh)."""
    from zoo.tasks.detection.loss import YOLOLoss

    boxes = np.array([[0.40, 0.40, 0.60, 0.60]])
    targets = encode_targets(boxes, np.array([0]), ANCHORS, grid=7)[None]
    raw = raw_from_targets(targets[0], ANCHORS, num_classes=3, confidence=30.0).reshape(7, 7, 3, 8)
    (row, col, k), = zip(*np.nonzero(targets[0, ..., 4]))
    other = (k + 1) % 3
    raw[row, col, other] = raw[row, col, k]
    raw[row, col, other, 2:4] = np.log(np.array([0.2, 0.2]) / ANCHORS[other])  # same box from another anchor
    with_ignore = float(YOLOLoss(ANCHORS, 3, ignore_thresh=0.5)(targets, raw.reshape(1, 7, 7, 24)))
    without = float(YOLOLoss(ANCHORS, 3, ignore_thresh=1.01)(targets, raw.reshape(1, 7, 7, 24)))
    assert with_ignore < 1e-5 < without
