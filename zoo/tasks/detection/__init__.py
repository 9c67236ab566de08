"""Object detection (YOLOv2 head, YOLO-LITE): the TASK object (interface in zoo/tasks/base.py).

Prediction side here: letterbox `prepare`, `postprocess` to `detections` records in original
pixels (decode + confidence filter + class-aware NMS, options conf / iou / max_det), `save` of
annotated images. The training side (readers -> tf.data, anchors, model, loss, evaluation) is in
zoo/tasks/detection/train.py, imported only when training or evaluating.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import UsageError

_TRAIN_MODULE = "zoo.tasks.detection.train"
DEFAULTS = {"conf": 0.25, "iou": 0.45, "max_det": 100}


def _train():
    return importlib.import_module(_TRAIN_MODULE)


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


def detection_options(options: dict | None) -> dict[str, Any]:
    """conf, iou, max_det from `options` (None or missing: defaults), checked."""
    options = options or {}
    out = {k: (options.get(k) if options.get(k) is not None else v) for k, v in DEFAULTS.items()}
    for key in ("conf", "iou"):
        if not 0.0 <= float(out[key]) <= 1.0:
            raise UsageError(f"`{key}` must be between 0 and 1. Received: {key}={out[key]!r}.")
        out[key] = float(out[key])
    if int(out["max_det"]) < 1:
        raise UsageError(f"`max_det` must be >= 1. Received: max_det={out['max_det']!r}.")
    out["max_det"] = int(out["max_det"])
    return out


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


class DetectionTask:
    name = "detection"

    # --- prediction ---

    def prepare(self, image: np.ndarray, meta: dict) -> tuple[np.ndarray, dict]:
        """Letterbox to the model input (gray 114 padding, as YOLO); uint8, normalisation is in the model."""
        from zoo.data.images import resize_for_model

        prep = meta.get("preprocessing") or {}
        height, width = meta["input_shape"][:2]
        return resize_for_model(image, (height, width), resize=prep.get("resize", "letterbox"),
                                crop_pct=prep.get("crop_pct"), interpolation=prep.get("interpolation", "bilinear"))

    def postprocess(self, outputs: Any, infos: list[dict], meta: dict, options: dict) -> list[dict]:
        """`detections` [{label, index, score, box}] per image, box in original pixels, best first."""
        from zoo.tasks.detection.boxes import detect

        raw = _single_output(outputs)
        # thresholds: the caller's, else those stored with the model, else DEFAULTS
        stored = meta.get("detection") or {}
        opts = detection_options({**stored, **{k: v for k, v in (options or {}).items() if v is not None}})
        anchors = model_anchors(meta, raw.shape[-1])
        labels = list(meta.get("labels") or [])
        records = []
        for info, (boxes, scores, classes) in zip(infos, detect(raw, anchors, **opts)):
            pixels = to_original(boxes, info, tuple(meta["input_shape"][:2]))
            records.append({"detections": [
                {"label": labels[c] if c < len(labels) else str(int(c)), "index": int(c),
                 "score": round(float(s), 6), "box": [round(float(v), 2) for v in box]}
                for box, s, c in zip(pixels, scores, classes)
            ]})
        return records

    def save(self, record: dict, image: np.ndarray, meta: dict, save_dir) -> None:
        """The input image with its boxes, labels and scores, one colour per class (PNG)."""
        from zoo.data.sources import artefact_path
        from zoo.tasks.detection.draw import save_annotated

        save_annotated(image, record.get("detections", []), artefact_path(Path(save_dir), record["source"], suffix=".png"))

    # --- training: zoo/tasks/detection/train.py ---

    def check_data(self, data, options):
        """Layout check in a second, before TensorFlow loads: a folder in VOC, COCO or YOLO layout."""
        from zoo.tasks.detection.data import detect_format

        root = Path(data)
        if not root.is_dir():
            raise UsageError(f"Detection data {str(data)!r} is not a folder. Give a VOC, COCO or YOLO dataset folder.")
        detect_format(root)
        if options.get("val") and not Path(options["val"]).is_dir():
            raise UsageError(f"--val {options['val']!r} is not a folder. Give a detection dataset folder.")

    def load_data(self, data, options):
        return _train().load_data(data, options)

    def build_model(self, arch, data, options):
        return _train().build_model(arch, data, options)

    def loss(self, data, options):
        return _train().loss(data, options)

    def metrics(self, data, options):
        return _train().metrics(data, options)

    def metadata(self, model, data, options):
        return _train().metadata(model, data, options)

    def evaluate(self, model, meta, data_dir, options):
        return _train().evaluate(model, meta, data_dir, options)

    def report(self, model, meta, data, out_dir):
        return _train().report(model, meta, data, out_dir)

    def monitor(self, options):
        return ("val_loss", "min")


def _single_output(outputs: Any) -> np.ndarray:
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, (list, tuple)):
        outputs = outputs[0]
    return np.asarray(outputs)


TASK = DetectionTask()
