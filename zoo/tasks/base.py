"""The interface every task module implements (zoo/tasks/<task>.py defines `TASK`).

Prediction (zoo.inference drives it; decoding is zoo.data.images, shared with training):
    prepare(image, meta) -> (array, info)
        image: HxWxC uint8 as decoded (C = 3, or 1 for 1-channel models). Returns the model
        input (float32 or uint8, the model's H x W x C) and whatever postprocess needs to map
        outputs back to the original pixels (original size, letterbox scale and padding).
        Runs in worker threads: pure numpy / PIL, no TensorFlow.
    postprocess(outputs, infos, meta, options) -> list[dict]
        outputs: the model's outputs for a batch, as numpy (array, or dict/list of arrays).
        Returns the task fields of each record ("predictions", "detections", "mask", "classes",
        "caption"). options: top_k, conf, iou, max_det, beam_size, save_dir...
    save(record, image, meta, save_dir) -> None
        Draws the per-task artefact (annotated boxes, mask + overlay PNG, captioned image).

Training (zoo.training.finetune drives it, sharing precision, strategy, resume, history, curves):
    load_data(data, options) -> TaskData
    build_model(arch, data, options) -> keras.Model     (weights, backbone, head for data's classes)
    loss(data, options), metrics(data, options)
    metadata(model, data, options) -> dict             (task extras for metadata.json: anchors, vocab...)
    evaluate(model, meta, data_dir, options) -> dict   (same keys as `zoo evaluate --json`)
    report(model, meta, data, out_dir) -> None         (task plots after training)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class TaskData:
    """What a task's reader hands the trainer."""

    train: Any  # tf.data.Dataset of (inputs, targets), not yet batched unless `batched`
    val: Any  # same for validation, or None
    labels: list[str]  # class names (captioning: may be empty)
    summary: dict[str, Any] = field(default_factory=dict)  # counts: images, skipped files, per class...
    extras: dict[str, Any] = field(default_factory=dict)  # anchors, vocabulary, class weights...
    batched: bool = False


class Task(Protocol):
    name: str

    def prepare(self, image, meta: dict) -> tuple[Any, dict]: ...

    def postprocess(self, outputs, infos: list[dict], meta: dict, options: dict) -> list[dict]: ...

    def save(self, record: dict, image, meta: dict, save_dir) -> None: ...
