"""Image classification: the TASK object (interface in zoo/tasks/base.py).

Prediction side here (prepare / postprocess / save); the training side (load_data, build_model,
loss, metrics, metadata, evaluate, report, and optionally monitor / stages) lives in
zoo/tasks/classification_train.py and is imported only when training needs it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

_TRAIN_MODULE = "zoo.tasks.classification_train"
_OPTIONAL_TRAINING = ("check_data", "monitor", "stages")


def _train():
    return importlib.import_module(_TRAIN_MODULE)


class ClassificationTask:
    name = "classification"
    native_size = True  # from scratch, train at the images' own size (zoo.training.task.Task)

    # --- prediction ---

    def prepare(self, image: np.ndarray, meta: dict) -> tuple[np.ndarray, dict]:
        """Resize to the model input with the metadata's policy (squash unless it says crop or
        letterbox); uint8 pixels, since normalisation lives in the model."""
        from zoo.data.images import resize_for_model

        prep = meta.get("preprocessing") or {}
        height, width = meta["input_shape"][:2]
        return resize_for_model(image, (height, width), resize=prep.get("resize", "squash"),
                                crop_pct=prep.get("crop_pct"), interpolation=prep.get("interpolation", "bilinear"))

    def postprocess(self, outputs: Any, infos: list[dict], meta: dict, options: dict) -> list[dict]:
        """Top-k {label, index, score} per image; logits become probabilities by softmax."""
        scores = _single_output(outputs).astype(np.float64)
        scores = scores.reshape(scores.shape[0], -1)
        if scores.shape[1] == 1:  # one sigmoid unit: the probability of class 1
            p = np.clip(scores[:, 0], 0.0, 1.0)
            scores = np.stack([1.0 - p, p], axis=1)
        elif not _are_probabilities(scores):
            shifted = scores - scores.max(axis=1, keepdims=True)
            scores = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        labels = list(meta.get("labels") or [])
        k = min(int(options.get("top_k", 5)), scores.shape[1])
        records = []
        for row in scores:
            top = np.argsort(-row, kind="stable")[:k]
            records.append({"predictions": [
                {"label": labels[i] if i < len(labels) else str(int(i)), "index": int(i), "score": round(float(row[i]), 6)}
                for i in top
            ]})
        return records

    def save(self, record: dict, image: np.ndarray, meta: dict, save_dir) -> None:
        """The input with its top predictions written in the corner, as PNG."""
        from PIL import Image, ImageDraw

        from zoo.data.sources import artefact_path

        pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).convert("RGB")
        if max(pil.size) < 256:  # tiny inputs (28x28 digits) would leave no room for text
            factor = -(-256 // max(pil.size))
            pil = pil.resize((pil.width * factor, pil.height * factor), Image.Resampling.NEAREST)
        draw = ImageDraw.Draw(pil)
        lines = [f"{p['label']} {p['score']:.2f}" for p in record.get("predictions", [])[:5]]
        for n, line in enumerate(lines):
            xy = (4, 4 + 12 * n)
            box = draw.textbbox(xy, line)
            draw.rectangle(box, fill=(0, 0, 0))
            draw.text(xy, line, fill=(255, 255, 255) if n else (255, 220, 0))
        path = artefact_path(Path(save_dir), record["source"], suffix=".png")
        _save_png_atomic(pil, path)

    # --- training: zoo/tasks/classification_train.py ---

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

    def __getattr__(self, name: str):
        # check_data / monitor / stages are optional in the interface: present only if the trainer module has them
        if name in _OPTIONAL_TRAINING:
            module = _train()
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(name)


def _single_output(outputs: Any) -> np.ndarray:
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, (list, tuple)):
        outputs = outputs[0]
    return np.asarray(outputs)


def _are_probabilities(scores: np.ndarray) -> bool:
    return bool(np.all(scores >= -1e-6) and np.all(scores <= 1 + 1e-6)
                and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3))


def _save_png_atomic(image, path: Path) -> None:
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            image.save(fh, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


TASK = ClassificationTask()
