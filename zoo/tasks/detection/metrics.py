"""Detection metrics: COCO mAP by pycocotools (the reference evaluator) and VOC07 11-point AP.

Ground truth and detections per image, in the same pixel frame:
    gts[i]  = (boxes (N, 4) xyxy, classes (N,), ignore (N,) bool)   # VOC difficult / COCO crowd
    dets[i] = (boxes (K, 4) xyxy, scores (K,), classes (K,))
"""

from __future__ import annotations

import contextlib
import io
from typing import Sequence

import numpy as np


def coco_map(gts: Sequence, dets: Sequence, labels: Sequence[str]) -> dict:
    """mAP@[.5:.95], mAP@.5 and per-class AP by pycocotools' COCOeval (COCO conversion in memory).

    Classes without ground truth are left out of the means, as COCOeval does.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for i, (boxes, classes, ignore) in enumerate(gts):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        # COCO wants an image size; the extent of the boxes is enough for bbox evaluation.
        images.append({"id": i + 1, "width": 1, "height": 1})
        for box, cls, ign in zip(boxes, np.asarray(classes).reshape(-1), np.asarray(ignore).reshape(-1)):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": int(cls) + 1,
                                "bbox": [float(box[0]), float(box[1]), w, h], "area": w * h,
                                "iscrowd": int(bool(ign)), "ignore": int(bool(ign))})
    for i, (boxes, scores, classes) in enumerate(dets):
        for box, score, cls in zip(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(scores).reshape(-1),
                                   np.asarray(classes).reshape(-1)):
            results.append({"image_id": i + 1, "category_id": int(cls) + 1, "score": float(score),
                            "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]})
    per_class = {name: None for name in labels}
    per_class50 = {name: None for name in labels}
    if not annotations:
        return {"map": 0.0, "map50": 0.0, "ap": per_class, "ap50": per_class50}
    if not results:
        present = {int(a["category_id"]) - 1 for a in annotations}
        zeros = {name: (0.0 if k in present else None) for k, name in enumerate(labels)}
        return {"map": 0.0, "map50": 0.0, "ap": zeros, "ap50": dict(zeros)}
    with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints its tables
        truth = COCO()
        truth.dataset = {"images": images, "annotations": annotations,
                         "categories": [{"id": k + 1, "name": str(n)} for k, n in enumerate(labels)]}
        truth.createIndex()
        found = truth.loadRes(results)
        ev = COCOeval(truth, found, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"]  # (iou thresholds, recall points, classes, areas, max dets)
    for k, name in enumerate(labels):
        p = precision[:, :, k, 0, -1]
        if (p > -1).any():
            per_class[name] = float(p[p > -1].mean())
            p50 = p[0]
            per_class50[name] = float(p50[p50 > -1].mean()) if (p50 > -1).any() else 0.0
    return {"map": max(0.0, float(ev.stats[0])), "map50": max(0.0, float(ev.stats[1])),
            "ap": per_class, "ap50": per_class50}


def voc07_ap(gts: Sequence, dets: Sequence, cls: int, *, iou: float = 0.5) -> float | None:
    """PASCAL VOC 2007 11-point interpolated AP of class `cls` (None without ground truth).

    A detection is a true positive when its best-overlapping box of the class has IoU >= `iou`
    and was not matched before; a match with an ignored (difficult) box counts as neither.
    """
    from zoo.tasks.detection.boxes import box_iou

    records = []  # (score, image, box)
    n_pos = 0
    truths = []
    for boxes, classes, ignore in gts:
        mask = np.asarray(classes).reshape(-1) == cls
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[mask]
        ign = np.asarray(ignore, dtype=bool).reshape(-1)[mask]
        n_pos += int((~ign).sum())
        truths.append((boxes, ign, np.zeros(len(boxes), dtype=bool)))
    for i, (boxes, scores, classes) in enumerate(dets):
        mask = np.asarray(classes).reshape(-1) == cls
        for box, score in zip(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[mask], np.asarray(scores).reshape(-1)[mask]):
            records.append((float(score), i, box))
    if n_pos == 0:
        return None
    records.sort(key=lambda r: -r[0])
    tp = np.zeros(len(records))
    fp = np.zeros(len(records))
    for d, (_, i, box) in enumerate(records):
        boxes, ign, used = truths[i]
        if len(boxes) == 0:
            fp[d] = 1
            continue
        overlaps = box_iou(box[None], boxes)[0]
        j = int(overlaps.argmax())
        if overlaps[j] >= iou:
            if ign[j]:
                continue
            if not used[j]:
                tp[d], used[j] = 1, True
            else:
                fp[d] = 1
        else:
            fp[d] = 1
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    recall = tp / n_pos
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    ap = 0.0
    for t in np.arange(0.0, 1.1, 0.1):
        ap += (precision[recall >= t].max() if (recall >= t).any() else 0.0) / 11.0
    return float(ap)


def detection_metrics(gts: Sequence, dets: Sequence, labels: Sequence[str]) -> dict:
    """`zoo evaluate --json` keys: map, map50, voc07_map, per_class_ap {label: {ap, ap50, voc07_ap, gt}}."""
    coco = coco_map(gts, dets, labels)
    voc = {name: voc07_ap(gts, dets, k) for k, name in enumerate(labels)}
    counts = np.bincount(np.concatenate([np.asarray(g[1], dtype=np.int64).reshape(-1) for g in gts] or [np.zeros(0, int)]),
                         minlength=len(labels))
    present = [v for v in voc.values() if v is not None]
    return {
        "map": coco["map"],
        "map50": coco["map50"],
        "voc07_map": float(np.mean(present)) if present else 0.0,
        "per_class_ap": {name: {"ap": coco["ap"][name], "ap50": coco["ap50"][name], "voc07_ap": voc[name],
                             "gt": int(counts[k])} for k, name in enumerate(labels)},
        "images": len(gts),
        "detections": int(sum(len(np.asarray(d[1]).reshape(-1)) for d in dets)),
    }
