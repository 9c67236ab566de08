"""DetectionTask: the hooks the engine drives for YOLOv2-style detection (YOLO-LITE and backbones under
its head). Prediction hooks run in worker threads with numpy only; TensorFlow and Keras are imported
inside the training hooks, so importing this module stays light."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import UsageError
from zoo.tasks.detection.options import DetectionOptions
from zoo.training.task import Task, TaskData


class DetectionTask(Task):
    name = "detection"
    options_class = DetectionOptions

    # --- prediction ---

    def prepare(self, image: np.ndarray, meta: dict) -> tuple[np.ndarray, dict]:
        """Letterbox to the model input, as the model was trained."""
        from zoo.tasks.detection.predict import letterbox_input

        return letterbox_input(image, meta)

    def postprocess(self, outputs: Any, infos: list[dict], meta: dict, options: dict) -> list[dict]:
        """`detections` [{label, index, score, box}] per image, box in original pixels, best first."""
        from zoo.tasks.detection.boxes import detect
        from zoo.tasks.detection.predict import model_anchors, thresholds, to_original
        from zoo.training.task import first_output

        raw = first_output(outputs)
        # Thresholds: the caller's, else those stored with the model, else DetectionOptions' defaults.
        given = {k: v for k, v in (options or {}).items() if v is not None}
        limits = thresholds({**(meta.get("detection") or {}), **given})
        anchors = model_anchors(meta, raw.shape[-1])
        labels = list(meta.get("labels") or [])
        records = []
        for info, (boxes, scores, classes) in zip(infos, detect(raw, anchors, **limits)):
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

    # --- training ---

    def check_data(self, data, opts) -> None:
        """A folder in VOC, COCO or YOLO layout (and --val too), checked before TensorFlow loads."""
        from zoo.tasks.detection.data import detect_format

        root = Path(data)
        if not root.is_dir():
            raise UsageError(f"Detection data {str(data)!r} is not a folder. Give a VOC, COCO or YOLO dataset folder.")
        detect_format(root)
        if opts.val and not Path(opts.val).is_dir():
            raise UsageError(f"--val {opts.val!r} is not a folder. Give a detection dataset folder.")

    def load_data(self, data, opts) -> TaskData:
        """Read DATA (VOC, COCO or YOLO), split off validation, compute k-means anchors, build tf.data."""
        from zoo.tasks.detection.boxes import kmeans_anchors
        from zoo.tasks.detection.data import read_detection
        from zoo.tasks.detection.pipeline import input_size, make_dataset, normalised_wh, readable, split

        size = input_size(opts)
        dataset = read_detection(data)
        summary = dict(dataset.summary)
        if opts.val:
            val_set = read_detection(opts.val, labels=dataset.labels)
            train, val = dataset.samples, val_set.samples
            summary["val_summary"] = val_set.summary
        else:
            train, val = split(dataset, fraction=opts.val_split, seed=opts.seed)
        train, train_sizes = readable(train, summary)
        val, _ = readable(val, summary)
        if not train:
            raise UsageError(f"{data}: no readable training images. Check the image files.")
        anchors, anchor_iou = kmeans_anchors(normalised_wh(train, train_sizes), opts.task_options.anchors, seed=opts.seed)
        summary.update(train=len(train), val=len(val), anchors=len(anchors), anchor_iou=round(anchor_iou, 4))
        return TaskData(
            train=make_dataset(train, anchors, size, augment_level=opts.augment, seed=opts.seed, shuffle=True,
                               mosaic=opts.task_options.mosaic),
            val=make_dataset(val, anchors, size, seed=opts.seed) if val else None,
            labels=list(dataset.labels),
            summary=summary,
            extras={"anchors": anchors.round(6).tolist(), "anchor_iou": anchor_iou, "val_samples": val,
                    "train_samples": train, "size": size},
            num_train=len(train),
            num_val=len(val),
        )

    def build_model(self, arch, data: TaskData, opts):
        """yolo_lite (or the registry's detection model) for the data's classes and anchors. `--weights`
        may be a zoo model (directory or .keras) of an earlier run: its layers of matching name and
        shape are loaded (the head too when the classes and anchors match)."""
        import zoo
        from zoo.modeldir import attach_meta
        from zoo.tasks.detection.pipeline import input_size
        from zoo.tasks.detection.train import (backbone_weights, initial_weights, is_zoo_model, preprocessing_meta,
                                               prior_objectness, transfer_weights)

        topts = opts.task_options
        size = input_size(opts)
        arch = str(arch)
        source = None
        if is_zoo_model(arch):
            source, arch = arch, "yolo_lite"
        spec = zoo.info(arch)
        if spec["task"] != "detection":
            raise UsageError(f"{arch!r} is a {spec['task']} model; detection data needs a detection model such as "
                             f"'yolo_lite' (use --backbone {arch} to put {arch} under the YOLO head).")
        weights, from_run = initial_weights(arch, opts.weights)
        source = from_run or source
        arch_options: dict[str, Any] = {"anchors": [tuple(a) for a in data.extras["anchors"]], "backbone": opts.backbone,
                                        "backbone_weights": backbone_weights(opts.backbone, topts.backbone_weights)}
        if topts.batch_norm is not None:
            arch_options["batch_norm"] = topts.batch_norm
        model = zoo.build(arch, weights=weights, num_classes=len(data.labels), input_shape=(size, size, 3), **arch_options)
        report = None
        if weights is None and source is None:
            prior_objectness(model, len(data.labels), topts.obj_prior)
        if source is not None:
            report = transfer_weights(zoo.load_model(source), model)
            if not report["loaded"]:
                raise UsageError(f"No layer of {source} fits this yolo_lite (different backbone or size?). "
                                 f"Train from scratch with --weights none, or give a matching model.")
        # model.keras must load anywhere in safe mode: keep zoo's own YOLOLoss out of its compile config
        # (the trainer compiles again on resume; inference needs no loss).
        object.__setattr__(model, "get_compile_config", lambda: None)
        attach_meta(model, {"arch": arch, "task": "detection", "labels": list(data.labels),
                            "anchors": data.extras["anchors"], "input_shape": [size, size, 3],
                            "preprocessing": preprocessing_meta(opts.backbone),
                            **({"weights": {"origin": source, "loaded": len(report["loaded"]),
                                            "skipped": report["skipped"]}} if report else {})})
        return model

    def loss(self, data: TaskData, opts):
        from zoo.tasks.detection.loss import YOLOLoss

        t = opts.task_options
        return YOLOLoss(data.extras["anchors"], len(data.labels), ignore_thresh=t.ignore_thresh,
                        lambda_coord=t.lambda_coord, lambda_obj=t.lambda_obj, lambda_noobj=t.lambda_noobj,
                        lambda_class=t.lambda_class, xy_loss=t.xy_loss)

    # metrics: none during training (the base's []): mAP needs decoding and NMS over the whole set,
    # so `metadata` computes it once after training.

    def metadata(self, model, data: TaskData, opts) -> dict[str, Any]:
        """Anchors, labels, letterbox preprocessing, prediction thresholds, and the validation mAP."""
        from zoo.tasks.detection.metrics import detection_metrics
        from zoo.tasks.detection.pipeline import input_size
        from zoo.tasks.detection.predict import predict_samples
        from zoo.tasks.detection.train import preprocessing_meta

        meta = {"anchors": data.extras["anchors"], "anchor_iou": round(float(data.extras["anchor_iou"]), 4),
                "labels": list(data.labels), "input_shape": [input_size(opts)] * 2 + [3],
                "preprocessing": preprocessing_meta(opts.backbone), "detection": opts.task_options.thresholds()}
        val = data.extras.get("val_samples") or []
        if val:
            dets, gts = predict_samples(model, meta, val)
            scores = detection_metrics(gts, dets, data.labels)
            meta["metrics"] = {"val_map": round(scores["map"], 6), "val_map50": round(scores["map50"], 6),
                               "val_voc07_map": round(scores["voc07_map"], 6)}
        return meta

    def evaluate(self, model, meta: dict, data_dir, options: dict) -> dict[str, Any]:
        """mAP@[.5:.95], mAP@.5 (pycocotools), VOC07 AP per class on a labelled detection folder.
        `options` may set conf, iou and max_det (evaluation defaults: 0.001, 0.5, 100)."""
        from zoo.modeldir import get_meta
        from zoo.tasks.detection.data import read_detection
        from zoo.tasks.detection.metrics import detection_metrics
        from zoo.tasks.detection.predict import predict_samples

        meta = {**get_meta(model), **(meta or {})}
        options = options or {}
        labels = list(meta.get("labels") or [])
        dataset = read_detection(data_dir, labels=labels or None)
        labels = labels or dataset.labels
        meta = {**meta, "labels": labels, "input_shape": meta.get("input_shape") or list(model.input_shape[1:])}
        dets, gts = predict_samples(model, meta, dataset.samples, conf=float(options.get("conf") or 0.001),
                                    iou=float(options.get("iou") or 0.5), max_det=int(options.get("max_det") or 100))
        result = detection_metrics(gts, dets, labels)
        result["data"] = dataset.summary
        return result

    def report(self, model, meta: dict, data: TaskData, out_dir) -> None:
        """detections.png: up to 8 validation images with the trained model's boxes (conf 0.25)."""
        from zoo.files import save_image
        from zoo.modeldir import get_meta
        from zoo.tasks.detection.data import load_sample
        from zoo.tasks.detection.draw import contact_sheet, draw_detections
        from zoo.tasks.detection.predict import predict_samples

        samples = list(data.extras.get("val_samples") or data.extras.get("train_samples") or [])[:8]
        if not samples:
            return
        meta = {**get_meta(model), **(meta or {})}
        labels = list(meta.get("labels") or data.labels)
        dets, _ = predict_samples(model, meta, samples, conf=0.25, iou=0.45)
        tiles = []
        for sample, (boxes, scores, classes) in zip(samples, dets):
            image, _ = load_sample(sample)
            records = [{"label": labels[int(c)], "index": int(c), "score": float(s), "box": b.tolist()}
                       for b, s, c in zip(boxes, scores, classes)]
            tiles.append(draw_detections(image, records))
        save_image(contact_sheet(tiles), Path(out_dir) / "detections.png")
