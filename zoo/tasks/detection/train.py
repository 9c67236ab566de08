"""The training side of the detection task: data -> tf.data, anchors, model, loss, evaluation, report.

`options` is the trainer's dict (zoo/tasks/base.py). Detection reads from it input_shape (or
image_size), batch_size, seed, val, val_split, augment, weights, backbone, and from
`task_options` (`--opt key=value`): anchors (how many, default 5), mosaic (probability, default 0.5), backbone_weights,
batch_norm, obj_prior, ignore_thresh, lambda_coord, lambda_obj, lambda_noobj, lambda_class, xy_loss,
conf, iou, max_det.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoo.tasks.detection.data import DetectionSet, Sample, augment, load_sample, read_detection
from zoo.errors import ImageError, UsageError
from zoo.tasks.base import TaskData
from zoo.tasks.detection.boxes import detect, encode_targets, kmeans_anchors

STRIDE = 32
CACHE_BYTES = 512 << 20  # decoded images kept in memory (decode once) up to this size


def input_size(options: dict) -> int:
    shape = options.get("input_shape")
    size = int(shape[0]) if shape else int(options.get("image_size") or 224)
    if size < STRIDE or size % STRIDE:
        raise UsageError(f"Detection needs an image size that is a multiple of {STRIDE}. Received: {size}. "
                         f"Try --image-size 224, 320 or 416.")
    return size


def _task_options(options: dict) -> dict[str, Any]:
    return dict(options.get("task_options") or {})


# --------------------------------------------------------------------------- data


def _readable(samples: list[Sample], summary: dict) -> tuple[list[Sample], list[tuple[int, int]]]:
    """Samples whose image header opens, and their (height, width); the others are counted."""
    from PIL import Image

    kept, sizes, bad = [], [], []
    for sample in samples:
        try:
            with Image.open(sample.path) as im:
                w, h = im.size
            if sample.size is None or sample.normalised:
                sizes.append((h, w))
            else:
                sizes.append(sample.size)
            kept.append(sample)
        except Exception:  # any unreadable file: skipped and counted, never the whole run
            bad.append(str(sample.path))
    if bad:
        summary["skipped_images"] = summary.get("skipped_images", 0) + len(bad)
        summary["skipped_files"] = bad[:20]
    return kept, sizes


def _split(dataset: DetectionSet, options: dict) -> tuple[list[Sample], list[Sample]]:
    if dataset.splits.get("train") and dataset.splits.get("val"):
        by_stem = {s.path.stem: s for s in dataset.samples}
        train = [by_stem[k] for k in dataset.splits["train"] if k in by_stem]
        val = [by_stem[k] for k in dataset.splits["val"] if k in by_stem]
        if train and val:
            return train, val
    fraction = float(options.get("val_split", 0.2) or 0.0)
    order = np.random.default_rng(int(options.get("seed", 0))).permutation(len(dataset.samples))
    n_val = int(round(fraction * len(order)))
    if fraction > 0 and len(order) >= 2:
        n_val = min(max(n_val, 1), len(order) - 1)
    val = [dataset.samples[i] for i in sorted(order[:n_val])]
    train = [dataset.samples[i] for i in sorted(order[n_val:])]
    return train, val


def normalised_wh(samples: Sequence[Sample], sizes: Sequence[tuple[int, int]]) -> np.ndarray:
    """Box (w, h) as fractions of the letterboxed input side: pixels / max(image H, W)."""
    rows = []
    for sample, (h, w) in zip(samples, sizes):
        boxes = sample.boxes.astype(np.float64)
        if sample.normalised:
            boxes = boxes * np.array([w, h, w, h])
        rows.append((boxes[:, 2:] - boxes[:, :2]) / max(h, w))
    return np.concatenate(rows) if rows else np.zeros((0, 2))


class _Loader:
    """Index -> (image float32 S x S x 3 in [0, 255], targets (g, g, A, 6)), run inside tf.numpy_function."""

    def __init__(self, samples: list[Sample], anchors: np.ndarray, size: int, level: str, seed: int,
                 mosaic: float = 0.0):
        self.samples, self.anchors, self.size, self.level, self.seed = samples, anchors, size, level, seed
        self.mosaic = mosaic if level != "none" and len(samples) >= 4 else 0.0
        self.grid = size // STRIDE
        self.cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.cached_bytes = 0
        self.calls = np.zeros(len(samples), dtype=np.int64)
        self.lock = threading.Lock()
        self.failed: set[str] = set()

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        hit = self.cache.get(i)
        if hit is not None:
            return hit
        try:
            item = load_sample(self.samples[i])
        except ImageError:
            self.failed.add(str(self.samples[i].path))
            item = (np.full((self.size, self.size, 3), 114, np.uint8), np.zeros((0, 4), np.float32))
        with self.lock:
            if self.cached_bytes + item[0].nbytes <= CACHE_BYTES:
                self.cache[i] = item
                self.cached_bytes += item[0].nbytes
        return item

    def item(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        image, boxes = self.load(i)
        classes = self.samples[i].classes
        if len(boxes) != len(classes):  # a failed decode gave an empty sample
            classes = classes[:0]
        return image, boxes, classes

    def __call__(self, index) -> tuple[np.ndarray, np.ndarray]:
        i = int(index)
        with self.lock:
            self.calls[i] += 1
            call = int(self.calls[i])
        # Seeded by (seed, sample, visit): the same views in every run, whatever the thread order.
        rng = np.random.default_rng([self.seed, i, call])
        image, boxes, classes = self.item(i)
        others = None
        if self.mosaic and rng.random() < self.mosaic:
            others = [self.item(int(j)) for j in rng.choice(len(self.samples), 3, replace=False)]
        out, boxes, classes = augment(image, boxes, classes, self.size, rng, level=self.level, others=others)
        targets = encode_targets(boxes / self.size, classes, self.anchors, self.grid)
        return out.astype(np.float32), targets


def make_dataset(samples: list[Sample], anchors, size: int, *, augment_level: str = "none", seed: int = 0,
                 shuffle: bool = False, mosaic: float = 0.0):
    """An unbatched tf.data.Dataset of (image, targets) for the YOLO loss; `mosaic` is the probability
    that a training view is a mosaic of four images."""
    import tensorflow as tf

    anchors = np.asarray(anchors, dtype=np.float64)
    loader = _Loader(samples, anchors, size, augment_level, seed, mosaic)
    grid = size // STRIDE
    ds = tf.data.Dataset.range(len(samples))
    if shuffle:
        ds = ds.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True)

    def load(i):
        image, targets = tf.numpy_function(loader, [i], [tf.float32, tf.float32], stateful=False)
        image.set_shape((size, size, 3))
        targets.set_shape((grid, grid, len(anchors), 6))
        return image, targets

    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)


def load_data(data, options: dict) -> TaskData:
    """Read DATA (VOC, COCO or YOLO), split off validation, compute k-means anchors, build tf.data."""
    topts = _task_options(options)
    size = input_size(options)
    dataset = read_detection(data)
    summary = dict(dataset.summary)
    if options.get("val"):
        val_set = read_detection(options["val"], labels=dataset.labels)
        train, val = dataset.samples, val_set.samples
        summary["val_summary"] = val_set.summary
    else:
        train, val = _split(dataset, options)
    train, train_sizes = _readable(train, summary)
    val, _ = _readable(val, summary)
    if not train:
        raise UsageError(f"{data}: no readable training images. Check the image files.")
    n_anchors = int(topts.get("anchors", 5))
    if n_anchors < 1:
        raise UsageError(f"`anchors` must be >= 1. Received: anchors={n_anchors}.")
    anchors, anchor_iou = kmeans_anchors(normalised_wh(train, train_sizes), n_anchors, seed=int(options.get("seed", 0)))
    summary.update(train=len(train), val=len(val), anchors=len(anchors), anchor_iou=round(anchor_iou, 4))
    seed = int(options.get("seed", 0))
    level = options.get("augment", "light") or "none"
    return TaskData(
        train=make_dataset(train, anchors, size, augment_level=level, seed=seed, shuffle=True,
                           mosaic=float(topts.get("mosaic", 0.5))),
        val=make_dataset(val, anchors, size, seed=seed) if val else None,
        labels=list(dataset.labels),
        summary=summary,
        extras={"anchors": anchors.round(6).tolist(), "anchor_iou": anchor_iou, "val_samples": val,
                "train_samples": train, "size": size},
        num_train=len(train),
        num_val=len(val),
    )


# --------------------------------------------------------------------------- model and loss


def _backbone_weights(backbone: str | None, topts: dict) -> str | None:
    choice = topts.get("backbone_weights", "auto")
    if backbone is None or choice in (None, "none"):
        return None
    if choice == "auto":
        from zoo.pretrained.manifest import tags_for

        tags = tags_for(backbone)
        return tags[0] if tags else None
    return str(choice)


def _is_zoo_model(path: str) -> bool:
    p = Path(path)
    return (p.is_dir() and (p / "model.keras").is_file()) or (p.suffix == ".keras" and p.is_file())


def transfer_weights(source, target) -> dict[str, list[str]]:
    """Copy the weights of layers with the same name and shapes; returns {"loaded": [...], "skipped": [...]}."""
    report = {"loaded": [], "skipped": []}
    by_name = {layer.name: layer for layer in source.layers}
    for layer in target.layers:
        if not layer.weights:
            continue
        other = by_name.get(layer.name)
        if other is not None and [w.shape for w in other.weights] == [w.shape for w in layer.weights]:
            layer.set_weights(other.get_weights())
            report["loaded"].append(layer.name)
        else:
            report["skipped"].append(layer.name)
    return report


def preprocessing_meta(backbone: str | None) -> dict[str, Any]:
    if backbone is None:
        from zoo.models.common import PREPROCESSING

        return {**PREPROCESSING["unit"], "in_model": True, "resize": "letterbox"}
    return {"in_model": True, "resize": "letterbox", "backbone": backbone}


def prior_objectness(model, anchors: int, classes: int, prior: float) -> None:
    """Start every objectness logit at log(p / (1 - p)) (p = `prior`) instead of 0: nearly all anchor
    slots are empty, and p(object) = 0.5 everywhere makes the first steps fight a huge no-object loss
    (the focal-loss / YOLOv5 bias initialisation)."""
    layer = next((l for l in model.layers if l.name == "detect_conv"), None)
    if layer is None or not 0 < prior < 1:
        return
    bias = np.array(layer.bias.numpy())
    bias[4::5 + classes] = np.log(prior / (1 - prior))
    layer.bias.assign(bias)


def build_model(arch, data: TaskData, options: dict):
    """yolo_lite for the data's classes and anchors; `weights` may be a zoo model (directory or .keras)
    of an earlier run, whose layers of matching shapes are loaded (the head too when classes match)."""
    import zoo
    from zoo.modeldir import attach_meta

    topts = _task_options(options)
    size = input_size(options)
    anchors = [tuple(a) for a in data.extras["anchors"]]
    source = None
    arch = str(arch)
    if _is_zoo_model(arch):
        source, arch = arch, "yolo_lite"
    weights = options.get("weights")
    if weights in (None, "auto", "none", "None"):
        weights = None
    elif _is_zoo_model(str(weights)):
        source, weights = str(weights), None
    spec = zoo.info(arch)
    if spec["task"] != "detection":
        raise UsageError(f"{arch!r} is a {spec['task']} model; detection data needs a detection model such as "
                         f"'yolo_lite' (use --backbone {arch} to put {arch} under the YOLO head).")
    backbone = options.get("backbone")
    arch_options: dict[str, Any] = {"anchors": anchors, "backbone": backbone,
                                    "backbone_weights": _backbone_weights(backbone, topts)}
    if "batch_norm" in topts:
        arch_options["batch_norm"] = str(topts["batch_norm"]).lower() in ("1", "true", "yes")
    model = zoo.build(arch, weights=weights, num_classes=len(data.labels), input_shape=(size, size, 3), **arch_options)
    report = None
    if weights is None and source is None:
        prior_objectness(model, len(anchors), len(data.labels), float(topts.get("obj_prior", 0.01)))
    if source is not None:
        report = transfer_weights(zoo.load_model(source), model)
        if not report["loaded"]:
            raise UsageError(f"No layer of {source} fits this yolo_lite (different backbone or size?). "
                             f"Train from scratch with --weights none, or give a matching model.")
    # model.keras must load anywhere in safe mode: keep zoo's own YOLOLoss out of its compile config
    # (the trainer compiles again on resume; inference needs no loss).
    object.__setattr__(model, "get_compile_config", lambda: None)
    attach_meta(model, {"arch": arch, "task": "detection", "labels": list(data.labels), "anchors": data.extras["anchors"],
                        "input_shape": [size, size, 3], "preprocessing": preprocessing_meta(backbone),
                        **({"weights": {"origin": source, "loaded": len(report["loaded"]),
                                        "skipped": report["skipped"]}} if report else {})})
    return model


def loss(data: TaskData, options: dict):
    from zoo.tasks.detection.loss import YOLOLoss

    topts = _task_options(options)
    keys = ("ignore_thresh", "lambda_coord", "lambda_obj", "lambda_noobj", "lambda_class")
    extra = {"xy_loss": str(topts["xy_loss"])} if "xy_loss" in topts else {}
    return YOLOLoss(data.extras["anchors"], len(data.labels), **{k: float(topts[k]) for k in keys if k in topts}, **extra)


def metrics(data: TaskData, options: dict) -> list:
    return []  # mAP needs decoding + NMS over the whole set: computed by `evaluate` after training


def metadata(model, data: TaskData, options: dict) -> dict[str, Any]:
    from zoo.tasks.detection import detection_options

    """Task extras for metadata.json: anchors, labels, letterbox preprocessing, thresholds, and the
    validation mAP of the trained model (`metrics`)."""
    from zoo.tasks.detection.metrics import detection_metrics

    topts = _task_options(options)
    meta = {"anchors": data.extras["anchors"], "anchor_iou": round(float(data.extras["anchor_iou"]), 4),
            "labels": list(data.labels), "input_shape": [input_size(options)] * 2 + [3],
            "preprocessing": preprocessing_meta(options.get("backbone")),
            "detection": detection_options({k: topts.get(k) for k in ("conf", "iou", "max_det")})}
    val = data.extras.get("val_samples") or []
    if val:
        dets, gts = predict_samples(model, meta, val)
        scores = detection_metrics(gts, dets, data.labels)
        meta["metrics"] = {"val_map": round(scores["map"], 6), "val_map50": round(scores["map50"], 6),
                           "val_voc07_map": round(scores["voc07_map"], 6)}
    return meta


# --------------------------------------------------------------------------- evaluation


def predict_samples(model, meta: dict, samples: Sequence[Sample], *, conf: float = 0.001, iou: float = 0.5,
                    max_det: int = 100, batch_size: int = 16):
    """Run the model on samples: ([(boxes, scores, classes) in original pixels], [(boxes, classes, ignore)])."""
    from zoo.tasks.detection import TASK, model_anchors, to_original

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
            array, info = TASK.prepare(image, meta)
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


def evaluate(model, meta: dict, data_dir, options: dict | None = None) -> dict[str, Any]:
    """mAP@[.5:.95], mAP@.5 (pycocotools), VOC07 AP per class on a labelled detection folder."""
    from zoo.modeldir import get_meta
    from zoo.tasks.detection.metrics import detection_metrics

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


def report(model, meta: dict, data: TaskData, out_dir) -> None:
    """detections.png: up to 8 validation images with the trained model's boxes (conf 0.25)."""
    from PIL import Image

    from zoo.modeldir import get_meta
    from zoo.tasks.detection.draw import draw_detections, save_image

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
        tile = draw_detections(image, records)
        tile.thumbnail((320, 320))
        tiles.append(tile)
    cols = min(4, len(tiles))
    rows = -(-len(tiles) // cols)
    sheet = Image.new("RGB", (cols * 320, rows * 320), (255, 255, 255))
    for k, tile in enumerate(tiles):
        sheet.paste(tile, ((k % cols) * 320, (k // cols) * 320))
    save_image(sheet, Path(out_dir) / "detections.png")
