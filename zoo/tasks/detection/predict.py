"""From the raw YOLOv2 head to boxes in the original image's pixels (numpy only, no TensorFlow).

Prediction runs these in worker threads; evaluation and the training report run them on a model
over labelled samples (`predict_samples`), so that all three see the same letterbox and decoding.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from zoo.errors import ImageError, UsageError


def letterbox_input(image: np.ndarray, meta: dict) -> tuple[np.ndarray, dict]:
    """Letterbox to the model input (gray 114 padding, as YOLO) unless the metadata says otherwise;
    uint8, since normalisation lives in the model."""
    from zoo.data.images import resize_for_model

    prep = meta.get("preprocessing") or {}
    height, width = meta["input_shape"][:2]
    return resize_for_model(image, (height, width), resize=prep.get("resize", "letterbox"),
                            crop_pct=prep.get("crop_pct"), interpolation=prep.get("interpolation", "bilinear"))


def model_anchors(meta: dict, channels: int | None = None) -> np.ndarray:
    """The anchors a model was trained with (metadata "anchors"), else YOLOv2's VOC anchors when
    the head has room for exactly five."""
    anchors = meta.get("anchors")
    if anchors is None:
        from zoo.models.yolo_lite import VOC_ANCHORS

        anchors = VOC_ANCHORS
    anchors = np.asarray(anchors, dtype=np.float32).reshape(-1, 2)
    if channels is not None and (channels % len(anchors) or channels // len(anchors) < 6):
        raise UsageError(f"The model's head has {channels} channels per cell, which does not fit "
                         f"{len(anchors)} anchors x (5 + classes). Its metadata.json needs the 'anchors' it was "
                         f"trained with; re-create it with `zoo finetune`.")
    return anchors


def thresholds(options: dict | None) -> dict[str, Any]:
    """conf, iou, max_det from `options` (None or missing: the defaults of DetectionOptions), checked
    by DetectionOptions so that `--opt conf=` at training and `--conf` at prediction share one rule."""
    from zoo.tasks.detection.options import DetectionOptions
    from zoo.training.task import parse_options

    given = {k: v for k, v in (options or {}).items() if k in ("conf", "iou", "max_det") and v is not None}
    checked = parse_options(DetectionOptions, given, task="detection").thresholds()
    return {"conf": float(checked["conf"]), "iou": float(checked["iou"]), "max_det": int(checked["max_det"])}


def to_original(boxes: np.ndarray, info: dict, input_hw: tuple[int, int]) -> np.ndarray:
    """Normalised boxes on the model input -> pixels of the original image (undo letterbox/squash)."""
    ih, iw = input_hw
    (sy, sx), (top, left) = info["scale"], info.get("pad", (0, 0))
    ctop, cleft = info.get("crop", (0, 0))
    h, w = info["orig_size"]
    out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * np.array([iw, ih, iw, ih])
    out = (out - np.array([left, top, left, top]) + np.array([cleft, ctop, cleft, ctop])) / np.array([sx, sy, sx, sy])
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
    return out


def predict_samples(model, meta: dict, samples: Sequence, *, conf: float = 0.001, iou: float = 0.5,
                    max_det: int = 100, batch_size: int = 16):
    """Run the model on samples: ([(boxes, scores, classes) in original pixels], [(boxes, classes, ignore)]).

    The low default `conf` is the evaluation setting: mAP integrates over every score threshold.
    """
    from zoo.tasks.detection.boxes import detect
    from zoo.tasks.detection.data import load_sample

    size = tuple(meta["input_shape"][:2])
    anchors = None
    dets, gts = [], []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        inputs, infos = [], []
        for sample in chunk:
            try:
                image, boxes = load_sample(sample)
            except ImageError:
                continue  # unreadable files are left out of both sides
            array, info = letterbox_input(image, meta)
            inputs.append(array)
            infos.append(info)
            gts.append((boxes, sample.classes, sample.difficult))
        if not inputs:
            continue
        raw = np.asarray(model.predict_on_batch(np.stack(inputs).astype(np.float32)))
        anchors = model_anchors(meta, raw.shape[-1]) if anchors is None else anchors
        for info, (boxes, scores, classes) in zip(infos, detect(raw, anchors, conf=conf, iou=iou, max_det=max_det)):
            dets.append((to_original(boxes, info, size), scores, classes))
    return dets, gts
