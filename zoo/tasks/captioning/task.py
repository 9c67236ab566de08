"""Image captioning: the TASK object (interface in zoo/tasks/base.py).

Prediction: `prepare` resizes (policy from metadata, squash by default; the model carries its
preprocessing), `forward` runs the encoder once and decodes (greedy with beam_size 1, else beam
search; options beam_size, max_length, alpha), `postprocess` gives each record "caption" and
"log_prob", `save` writes the image with its caption under it. The vocabulary and max_length come
from metadata.json, so prediction reproduces the training tokenisation. Training side:
zoo/tasks/captioning/train.py, imported only when training needs it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import UsageError

_TRAIN_MODULE = "zoo.tasks.captioning.train"


def _train():
    return importlib.import_module(_TRAIN_MODULE)


def decoding_options(meta: dict, options: dict | None) -> dict[str, Any]:
    """beam_size, max_length (words) and alpha: the caller's options, else the model's metadata."""
    options = dict(options or {})
    settings = meta.get("captioning") or {}
    beam = options.get("beam_size") or settings.get("beam_size", 3)
    length = options.get("max_length") or int(meta.get("max_length", 20)) + 2
    alpha = options.get("alpha", settings.get("alpha", 1.0))
    try:
        beam, length, alpha = int(beam), int(length), float(alpha)
    except (TypeError, ValueError):
        raise UsageError(f"beam_size and max_length must be whole numbers and alpha a number. Received: "
                         f"beam_size={beam!r}, max_length={length!r}, alpha={alpha!r}.") from None
    if beam < 1 or length < 1:
        raise UsageError(f"beam_size and max_length must be >= 1. Received: beam_size={beam}, max_length={length}.")
    return {"beam_size": beam, "max_length": length, "alpha": alpha}


def check_model_vocabulary(model, vocab) -> list[str]:
    """The metadata's vocabulary must have the specials first and one word per softmax unit."""
    from zoo.tasks.captioning.text import check_vocabulary

    vocab = check_vocabulary(vocab)
    units = int(model.get_layer("decoder").get_layer("logits").units)
    if units != len(vocab):
        raise UsageError(f"metadata.json holds {len(vocab)} vocabulary words but the model's softmax has {units}. "
                         f"Keep model.keras and metadata.json of the same `zoo finetune` run together.")
    return vocab


class CaptioningTask:
    name = "captioning"

    # --- prediction ---

    def prepare(self, image: np.ndarray, meta: dict) -> tuple[np.ndarray, dict]:
        from zoo.data.images import resize_for_model

        prep = meta.get("preprocessing") or {}
        height, width = meta["input_shape"][:2]
        return resize_for_model(image, (height, width), resize=prep.get("resize", "squash"),
                                crop_pct=prep.get("crop_pct"), interpolation=prep.get("interpolation", "bilinear"))

    def forward(self, model, batch: np.ndarray, meta: dict, options: dict) -> list[dict]:
        from zoo.tasks.captioning.fit import generate

        vocab = meta.get("vocabulary")
        if not vocab:
            raise UsageError("This show_and_tell model has no vocabulary: it was not trained. Train it with "
                             "`zoo finetune show_and_tell DATA --out DIR` and predict with --model DIR.")
        check_model_vocabulary(model, vocab)
        return generate(model, batch, vocab=vocab, **decoding_options(meta, options))

    def postprocess(self, outputs: Any, infos: list[dict], meta: dict, options: dict) -> list[dict]:
        return [{"caption": o["caption"], "log_prob": round(float(o["log_prob"]), 4)} for o in outputs]

    def save(self, record: dict, image: np.ndarray, meta: dict, save_dir) -> None:
        from zoo.data.sources import artefact_path
        from zoo.tasks.captioning.draw import captioned, save_png

        save_png(captioned(image, record.get("caption", "")), artefact_path(Path(save_dir), record["source"]))

    # --- training: zoo/tasks/captioning/train.py ---

    def check_data(self, data, options):
        return _train().check_data(data, options)

    def load_data(self, data, options):
        return _train().load_data(data, options)

    def build_model(self, arch, data, options):
        return _train().build_model(arch, data, options)

    def stages(self, model, data, options):
        return _train().stages(model, data, options)

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


TASK = CaptioningTask()
