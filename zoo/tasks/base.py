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

Training (zoo.training.finetune drives it, sharing precision, strategy, resume, history, curves).
`options` is one plain dict (zoo.training.options.TrainOptions.as_dict()) with at least:
    input_shape (H, W, C) the model takes, batch_size, seed, val (path | None), val_split (float),
    augment ("none"|"light"|"strong"), class_weights ("auto"|"none"), weights (tag|path|None),
    label_smoothing, image_size, plus `task_options` (dict from `--opt key=value`, task-specific).

    check_data(data, options) -> None    optional: layout checks only, no TensorFlow, run first so
                                         bad input fails in a second
    load_data(data, options) -> TaskData
        Validate DATA and raise zoo.errors.UsageError (one line: rule, value, what to do) BEFORE
        anything trains. Datasets are UNBATCHED (the trainer batches with the global batch size),
        yield (inputs, targets) or (inputs, targets, sample_weight), images float32 in [0, 255]
        at options["input_shape"] (models carry their own preprocessing). Read pixels with
        zoo.data.images.decode_image so training and predict see the same pixels.
    build_model(arch, data, options) -> keras.Model
        arch: registry name, model directory, or "hub:PATH". Called under the precision policy
        and inside strategy.scope(); the output(s) must be float32 (last activation dtype="float32").
        Attach metadata with zoo.modeldir.attach_meta (labels, preprocessing, input_shape...).
    loss(data, options) -> keras loss (or dict per output)
    metrics(data, options) -> list of keras metrics (or dict per output)
    monitor(options) -> (name, mode)      optional: what early stopping / best checkpoint watch,
                                          default ("val_loss", "min")
    stages(model, data, options) -> list[zoo.training.recipe.Stage]
                                          optional: default is zoo.training.recipe.default_stages
                                          (head only on a frozen base, then unfreeze top blocks
                                          with layer-wise LR decay; one stage when from scratch)
    metadata(model, data, options) -> dict             (task extras for metadata.json: anchors, vocab...)
    evaluate(model, meta, data_dir, options) -> dict   (same keys as `zoo evaluate --json`)
    report(model, meta, data, out_dir) -> None         (task plots after training, e.g. confusion matrix)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


from zoo.training.task import TaskData  # noqa: E402  (moved to the engine)


class Task(Protocol):
    name: str

    def prepare(self, image, meta: dict) -> tuple[Any, dict]: ...

    def postprocess(self, outputs, infos: list[dict], meta: dict, options: dict) -> list[dict]: ...

    def save(self, record: dict, image, meta: dict, save_dir) -> None: ...
