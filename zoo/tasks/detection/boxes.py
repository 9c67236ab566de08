"""YOLOv2 box arithmetic in numpy: IoU, k-means anchors, target encoding, decoding and NMS.

Conventions: boxes are (x_min, y_min, x_max, y_max); "normalised" means fractions of the model
input side (letterboxed square), anchors are (w, h) in the same fractions. The raw head output
of one image is (S, S, A * (5 + C)), each anchor's slice (tx, ty, tw, th, objectness, classes...):
    x = (col + sigmoid(tx)) / S,   w = anchor_w * exp(tw),   p(object) = sigmoid(to),
    p(class | object) = softmax(classes).
Encoded targets are (S, S, A, 6): (cx, cy, w, h, object 0/1, class index) per anchor slot.
"""

from __future__ import annotations

import numpy as np

from zoo.errors import UsageError


def box_iou(a: np.ndarray, b: np.ndarray, *, dtype=np.float64) -> np.ndarray:
    """IoU matrix (N, M) between boxes a (N, 4) and b (M, 4) in xyxy."""
    a = np.asarray(a, dtype=dtype).reshape(-1, 4)
    b = np.asarray(b, dtype=dtype).reshape(-1, 4)
    # One 2-D array per coordinate: numpy is slow on broadcasts whose last axis has length 2.
    ax1, ay1, ax2, ay2 = (a[:, k, None] for k in range(4))
    bx1, by1, bx2, by2 = (b[None, :, k] for k in range(4))
    iw = np.minimum(ax2, bx2) - np.maximum(ax1, bx1)
    ih = np.minimum(ay2, by2) - np.maximum(ay1, by1)
    inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
    area_a = np.maximum(ax2 - ax1, 0.0) * np.maximum(ay2 - ay1, 0.0)
    area_b = np.maximum(bx2 - bx1, 0.0) * np.maximum(by2 - by1, 0.0)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def wh_iou(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU (N, K) of boxes and anchors given as (w, h), both centred at the same point."""
    wh = np.asarray(wh, dtype=np.float64)[:, None, :]
    anchors = np.asarray(anchors, dtype=np.float64)[None, :, :]
    inter = np.minimum(wh[..., 0], anchors[..., 0]) * np.minimum(wh[..., 1], anchors[..., 1])
    union = wh[..., 0] * wh[..., 1] + anchors[..., 0] * anchors[..., 1] - inter
    return inter / np.maximum(union, 1e-12)


def kmeans_anchors(wh: np.ndarray, k: int = 5, *, seed: int = 0, iterations: int = 300) -> tuple[np.ndarray, float]:
    """Anchors by k-means with the distance 1 - IoU (YOLOv2, Redmon & Farhadi 2016, sec. 2).

    Args:
        wh: (N, 2) box widths and heights (any unit; anchors come back in the same unit).
        k: number of anchors; fewer come back when there are fewer distinct boxes.
    Returns:
        (anchors (k, 2) sorted by area, mean IoU of each box with its best anchor).
    """
    wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    wh = wh[(wh > 0).all(axis=1)]
    if len(wh) == 0:
        raise UsageError("Cannot compute anchors: the training data has no boxes of positive size. "
                         "Check the annotations (zoo reads VOC XML, COCO JSON or YOLO txt).")
    distinct = np.unique(wh, axis=0)
    k = int(min(k, len(distinct)))
    rng = np.random.default_rng(seed)
    # k-means++ seeding with the IoU distance: spread-out starts converge to better anchors.
    centres = [distinct[rng.integers(len(distinct))]]
    for _ in range(1, k):
        d = 1.0 - wh_iou(distinct, np.array(centres)).max(axis=1)
        p = d**2 / (d**2).sum() if d.sum() > 0 else None
        centres.append(distinct[rng.choice(len(distinct), p=p)])
    centres = np.array(centres)
    assign = None
    for _ in range(iterations):
        new = wh_iou(wh, centres).argmax(axis=1)
        if assign is not None and np.array_equal(new, assign):
            break
        assign = new
        for j in range(k):
            members = wh[assign == j]
            if len(members):
                centres[j] = np.median(members, axis=0)
    centres = centres[np.argsort(centres.prod(axis=1))]
    mean_iou = float(wh_iou(wh, centres).max(axis=1).mean())
    return centres, mean_iou


def encode_targets(boxes: np.ndarray, classes: np.ndarray, anchors: np.ndarray, grid: int) -> np.ndarray:
    """Dense YOLOv2 targets (grid, grid, A, 6) for one image's normalised xyxy boxes.

    Each box goes to the cell holding its centre and the anchor of best shape IoU; when that
    slot is taken by another box, the next best free anchor of the cell is used.
    """
    anchors = np.asarray(anchors, dtype=np.float64)
    out = np.zeros((grid, grid, len(anchors), 6), dtype=np.float32)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return out
    wh = boxes[:, 2:] - boxes[:, :2]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    cells = np.clip(np.floor(centre * grid).astype(int), 0, grid - 1)
    ranking = np.argsort(-wh_iou(wh, anchors), axis=1)
    # Larger boxes first, so a small box does not take the slot a large one fits best.
    for i in np.argsort(-wh.prod(axis=1)):
        col, row = cells[i]
        for a in ranking[i]:
            if out[row, col, a, 4] == 0:
                out[row, col, a] = (*centre[i], *wh[i], 1.0, classes[i])
                break
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # no overflow warnings for large |x|


def decode(raw: np.ndarray, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw head outputs (B, S, S, A*(5+C)) -> boxes (B, N, 4) normalised xyxy, objectness (B, N), class
    probabilities (B, N, C), with N = S*S*A in row-major (row, col, anchor) order."""
    raw = np.asarray(raw, dtype=np.float32)
    anchors = np.asarray(anchors, dtype=np.float32)
    b, sy, sx, channels = raw.shape
    a = len(anchors)
    if channels % a or channels // a < 6:
        raise UsageError(f"The model outputs {channels} channels per cell, which does not fit {a} anchors "
                         f"x (5 + classes). Use the anchors stored with the model (metadata.json 'anchors').")
    t = raw.reshape(b, sy, sx, a, channels // a)
    cols = np.arange(sx, dtype=np.float32)[None, None, :, None]
    rows = np.arange(sy, dtype=np.float32)[None, :, None, None]
    cx = (cols + _sigmoid(t[..., 0])) / sx
    cy = (rows + _sigmoid(t[..., 1])) / sy
    w = anchors[:, 0] * np.exp(np.minimum(t[..., 2], 10.0))
    h = anchors[:, 1] * np.exp(np.minimum(t[..., 3], 10.0))
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1).reshape(b, -1, 4)
    obj = _sigmoid(t[..., 4]).reshape(b, -1)
    logits = t[..., 5:].reshape(b, -1, channels // a - 5)
    logits = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=-1, keepdims=True)
    return boxes, obj, probs


def nms(boxes: np.ndarray, scores: np.ndarray, *, iou: float = 0.45, max_det: int = 100,
        classes: np.ndarray | None = None) -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, best score first.

    With `classes`, boxes of different classes never suppress each other (class-aware NMS:
    each class's boxes are shifted to their own region of the plane, then one pass runs).
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if len(boxes) == 0 or max_det <= 0:
        return np.zeros((0,), dtype=np.int64)
    if classes is not None:
        span = float(np.abs(boxes).max()) * 2 + 1.0
        boxes = boxes + (np.asarray(classes, dtype=np.float32) * span)[:, None]
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    if len(boxes) <= 1024:
        # One IoU matrix, then a cheap greedy pass: far fewer numpy calls than one IoU row per kept box.
        ranked = boxes[order]
        overlaps = box_iou(ranked, ranked, dtype=np.float32) > iou
        removed = np.zeros(len(order), dtype=bool)
        for rank in range(len(order)):
            if removed[rank]:
                continue
            keep.append(int(order[rank]))
            if len(keep) >= max_det:
                break
            removed |= overlaps[rank]
        return np.asarray(keep, dtype=np.int64)
    x1, y1, x2, y2 = boxes.T
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    while order.size and len(keep) < max_det:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        overlap = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-12)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def detect(raw: np.ndarray, anchors: np.ndarray, *, conf: float = 0.25, iou: float = 0.45, max_det: int = 100,
           max_candidates: int = 3000) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Decode + confidence filter + class-aware NMS for a batch of raw outputs.

    Returns per image (boxes (K, 4) normalised xyxy, scores (K,), classes (K,)), best first.
    The score is p(object) * p(class | object) of the anchor's best class, as in YOLOv2.
    """
    boxes, obj, probs = decode(raw, anchors)
    results = []
    for i in range(len(boxes)):
        cls = probs[i].argmax(axis=-1)
        score = obj[i] * probs[i][np.arange(len(cls)), cls]
        idx = np.flatnonzero(score >= conf)
        if idx.size > max_candidates:  # bounds NMS time when the threshold is very low
            idx = idx[np.argpartition(-score[idx], max_candidates)[:max_candidates]]
        keep = idx[nms(boxes[i][idx], score[idx], iou=iou, max_det=max_det, classes=cls[idx])]
        results.append((boxes[i][keep], score[keep], cls[keep]))
    return results
