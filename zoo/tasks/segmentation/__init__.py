"""Semantic segmentation: the TASK object (interface in zoo/tasks/base.py).

Prediction: the image is squashed to the model input (bilinear), the per-pixel class scores are
resized back to the ORIGINAL image size (bilinear, per class) before the argmax, and the record
gets
    "mask":    path of a PNG of class indices at the original size, VOC palette (index = class)
    "classes": {label: fraction of the image's pixels}, largest first, classes present only.
Where masks go: with `save_dir` (`zoo predict --save-dir DIR`) into DIR as <stem>_mask.png, next
to <stem>_overlay.png (the image tinted by class, with a legend). Without it, into a fresh
temporary folder per run (zoo-masks-XXXXXXXX under the system temp dir); the record holds the path.

Training side: zoo/tasks/segmentation/train.py (imported only when training or evaluating).
"""

from __future__ import annotations

import importlib
import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np

_TRAIN_MODULE = "zoo.tasks.segmentation.train"


def _train():
    return importlib.import_module(_TRAIN_MODULE)


def labels_for(meta: dict, num_classes: int) -> list[str]:
    """The model's labels; the VOC names for an unlabelled 21-class model; else "0", "1", ..."""
    labels = list(meta.get("labels") or [])
    if len(labels) == num_classes:
        return labels
    if num_classes == 21:
        from zoo.tasks.segmentation.data import VOC_CLASSES

        return list(VOC_CLASSES)
    return [labels[i] if i < len(labels) else str(i) for i in range(num_classes)]


def scores_to_mask(scores: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, C) class scores -> (H, W) class indices at `size`, resizing each class map bilinearly
    first (smoother borders than resizing the argmax)."""
    from PIL import Image

    scores = np.asarray(scores, np.float32)
    height, width = int(size[0]), int(size[1])
    if scores.shape[:2] != (height, width):
        scores = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(scores[:, :, c]), mode="F")
                                      .resize((width, height), Image.Resampling.BILINEAR))
                           for c in range(scores.shape[2])], axis=-1)
    dtype = np.uint8 if scores.shape[2] <= 256 else np.uint16
    return scores.argmax(axis=-1).astype(dtype)


def class_fractions(mask: np.ndarray, labels: list[str]) -> dict[str, float]:
    counts = np.bincount(mask.reshape(-1).astype(np.int64), minlength=len(labels))
    total = max(int(mask.size), 1)
    order = np.argsort(-counts, kind="stable")
    return {labels[i] if i < len(labels) else str(i): round(float(counts[i]) / total, 6) for i in order if counts[i]}


def overlay(image: np.ndarray, mask: np.ndarray, labels: list[str], *, alpha: float = 0.5):
    """The image tinted with the VOC colour of each pixel's class (background untinted) and a legend."""
    from PIL import Image, ImageDraw

    from zoo.tasks.segmentation.data import voc_palette

    rgb = image if image.shape[2] == 3 else np.repeat(image, 3, axis=2)
    palette = voc_palette()
    colours = palette[np.minimum(mask, 255)].astype(np.float32)
    tint = (mask != 0)[..., None]
    out = np.where(tint, (1 - alpha) * rgb + alpha * colours, rgb).astype(np.uint8)
    pil = Image.fromarray(out)
    if max(pil.size) < 256:  # room for the legend on tiny images
        factor = -(-256 // max(pil.size))
        pil = pil.resize((pil.width * factor, pil.height * factor), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(pil)
    present = [int(i) for i in np.unique(mask) if i != 0]
    for n, index in enumerate(present[:12]):
        name = labels[index] if index < len(labels) else str(index)
        y = 4 + 14 * n
        box = draw.textbbox((18, y), name)
        draw.rectangle((2, y, box[2] + 2, box[3] + 1), fill=(0, 0, 0))
        draw.rectangle((4, y + 1, 14, y + 11), fill=tuple(int(v) for v in palette[min(index, 255)]))
        draw.text((18, y), name, fill=(255, 255, 255))
    return pil


class SegmentationTask:
    name = "segmentation"

    # --- prediction ---

    def prepare(self, image: np.ndarray, meta: dict) -> tuple[np.ndarray, dict]:
        """Squash to the model input (bilinear, like training); remember the original size."""
        from zoo.data.images import resize_for_model

        prep = meta.get("preprocessing") or {}
        height, width = meta["input_shape"][:2]
        return resize_for_model(image, (height, width), resize="squash",
                                interpolation=prep.get("interpolation", "bilinear"))

    def postprocess(self, outputs: Any, infos: list[dict], meta: dict, options: dict) -> list[dict]:
        """A mask PNG at the original size and the class fractions for each image."""
        from zoo.tasks.segmentation.data import write_mask

        scores = _single_output(outputs)
        labels = labels_for(meta, scores.shape[-1])
        folder = _mask_folder(options)
        counter = options.setdefault("_segmentation_counter", itertools.count())
        records = []
        for row, info in zip(scores, infos):
            mask = scores_to_mask(row, info["orig_size"])
            path = folder / f".zoo-mask-{os.getpid()}-{next(counter):06d}.png" if options.get("save_dir") \
                else folder / f"mask_{next(counter):06d}.png"
            write_mask(path, mask)
            records.append({"mask": str(path), "classes": class_fractions(mask, labels)})
        return records

    def save(self, record: dict, image: np.ndarray, meta: dict, save_dir) -> None:
        """<stem>_mask.png (class indices, VOC palette) and <stem>_overlay.png in save_dir."""
        from zoo.tasks.segmentation.data import read_mask
        from zoo.data.sources import artefact_path

        save_dir = Path(save_dir)
        source = record["source"]
        mask_path = artefact_path(save_dir, source, suffix="_mask.png")
        overlay_path = mask_path.with_name(mask_path.name[: -len("_mask.png")] + "_overlay.png")
        current = Path(record["mask"])
        mask = read_mask(current)
        os.replace(current, mask_path)  # same folder: postprocess wrote it into save_dir
        record["mask"] = str(mask_path)
        labels = labels_for(meta, int(max(len(meta.get("labels") or []), mask.max() + 1)))
        _save_png_atomic(overlay(image, mask, labels), overlay_path)

    # --- training: zoo/tasks/segmentation_train.py ---

    def check_data(self, data, options):
        return _train().check_data(data, options)

    def load_data(self, data, options):
        return _train().load_data(data, options)

    def build_model(self, arch, data, options):
        return _train().build_model(arch, data, options)

    def loss(self, data, options):
        return _train().loss(data, options)

    def metrics(self, data, options):
        return _train().metrics(data, options)

    def monitor(self, options):
        return _train().monitor(options)

    def metadata(self, model, data, options):
        return _train().metadata(model, data, options)

    def evaluate(self, model, meta, data_dir, options):
        return _train().evaluate(model, meta, data_dir, options)

    def report(self, model, meta, data, out_dir):
        return _train().report(model, meta, data, out_dir)


def _mask_folder(options: dict) -> Path:
    if options.get("save_dir") is not None:
        return Path(options["save_dir"])
    folder = options.get("_segmentation_dir")
    if folder is None:
        import tempfile

        folder = options["_segmentation_dir"] = Path(tempfile.mkdtemp(prefix="zoo-masks-"))
    return Path(folder)


def _single_output(outputs: Any) -> np.ndarray:
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, (list, tuple)):
        outputs = outputs[0]
    scores = np.asarray(outputs)
    if scores.ndim != 4:
        raise ValueError(f"A segmentation model must output (batch, height, width, classes); got shape {scores.shape}.")
    return scores


def _save_png_atomic(image, path: Path) -> None:
    from zoo.modeldir import atomic_save_image

    atomic_save_image(image, path)


TASK = SegmentationTask()
