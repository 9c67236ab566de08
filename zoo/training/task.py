"""The Task interface the engine drives: one subclass per task package (zoo/tasks/<task>/).

The engine (zoo.training.finetune, zoo.inference, zoo.evaluation, zoo.exporting) only ever sees
this class. The registry row names a task; `get_task(name)` imports `zoo.tasks.<name>` by name,
so nothing here imports a concrete task, and adding a task is one folder plus one registry row.

Prediction hooks run in worker threads (pure numpy / PIL, no TensorFlow):
    prepare(image, meta) -> (model input, info for postprocess)
    postprocess(outputs, infos, meta, options) -> list of records' task fields
    save(record, image, meta, save_dir) -> None   (draw the per-task artefact)

Training hooks receive `opts`, a zoo.training.options.TrainOptions whose run-time fields
(arch, task, input_shape, replicas, workdir) are filled by the engine and whose `task_options`
is this task's own frozen options dataclass (`options_class`), parsed once from `--opt key=value`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from zoo.errors import UsageError


@dataclass
class TaskData:
    """What a task's reader hands the trainer."""

    train: Any  # tf.data.Dataset of (inputs, targets[, sample_weight]), not yet batched unless `batched`
    val: Any  # same for validation, or None
    labels: list[str]  # class names (captioning: may be empty)
    summary: dict[str, Any] = field(default_factory=dict)  # counts: train, val, skipped, per_class...
    extras: dict[str, Any] = field(default_factory=dict)  # anchors, vocabulary, validation arrays...
    batched: bool = False  # True only if the task batches itself (then the trainer does not)
    num_train: int | None = None  # examples in `train` (steps per epoch for schedules)
    num_val: int | None = None
    augment: Any = None  # batched (x, y[, w]) -> same; the trainer applies it to training batches only


@dataclass(frozen=True)
class NoOptions:
    """A task without `--opt` options."""


class Task:
    """Base class of every task. Subclasses set `name` and `options_class` and override the hooks
    their task needs; the defaults here are the ones most tasks share."""

    name: ClassVar[str] = ""
    options_class: ClassVar[type] = NoOptions
    # True: a registry model trained from scratch without --image-size is built at the data's own
    # image size (zoo.training.recipe.native_size), for tasks whose models take any input size.
    native_size: ClassVar[bool] = False

    # --- options ---

    def parse_options(self, raw: Any) -> Any:
        """`--opt key=value` pairs (strings from the CLI, or typed values from Python) -> the
        task's frozen options dataclass. An unknown key names the valid ones."""
        return parse_options(self.options_class, raw, task=self.name)

    # --- prediction ---

    def prepare(self, image, meta: dict) -> tuple[Any, dict]:
        """Resize to the model input with the metadata's policy (squash unless it says crop or
        letterbox); uint8 pixels, since normalisation lives in the model."""
        from zoo.data.images import resize_for_model

        prep = meta.get("preprocessing") or {}
        height, width = meta["input_shape"][:2]
        return resize_for_model(image, (height, width), resize=prep.get("resize", "squash"),
                                crop_pct=prep.get("crop_pct"), interpolation=prep.get("interpolation", "bilinear"))

    def postprocess(self, outputs, infos: list[dict], meta: dict, options: dict) -> list[dict]:
        raise NotImplementedError(f"the {self.name} task does not predict")

    # Optional: `forward(model, batch, meta, options) -> outputs` for models that need more than one
    # call per batch (a captioner's beam search); zoo.inference uses the compiled model when absent.
    forward = None

    def save(self, record: dict, image, meta: dict, save_dir) -> None:
        """Draw the per-task artefact of one record; tasks without one draw nothing."""

    # --- training ---

    def check_data(self, data, opts) -> None:
        """Layout checks only, no TensorFlow: run first so that bad DATA fails in a second."""

    def load_data(self, data, opts) -> TaskData:
        raise UsageError(f"Fine-tuning {self.name} models is not available in this build of zoo.")

    def build_model(self, arch, data: TaskData, opts):
        raise NotImplementedError

    def loss(self, data: TaskData, opts):
        raise NotImplementedError

    def metrics(self, data: TaskData, opts) -> Any:
        return []

    def monitor(self, opts) -> tuple[str, str]:
        """What early stopping and the best checkpoint watch."""
        return ("val_loss", "min")

    def stages(self, model, data: TaskData, opts) -> list:
        """Head on a frozen base, then the top blocks with layer-wise LR decay (one stage from scratch)."""
        from zoo.training.recipe import model_stages

        return model_stages(model, opts, num_train=data.num_train)

    def metadata(self, model, data: TaskData, opts) -> dict[str, Any]:
        """Task extras for metadata.json (anchors, vocabulary...)."""
        return {}

    def evaluate(self, model, meta: dict, data_dir, opts) -> dict[str, Any]:
        raise UsageError(f"Evaluating {self.name} models is not available in this build of zoo.")

    def report(self, model, meta: dict, data: TaskData, out_dir) -> None:
        """Task plots after training (confusion matrix, IoU bars...)."""


def first_output(outputs: Any):
    """The model's first (or only) output as numpy, whether the forward function returned it
    bare, in a list or in a dict."""
    import numpy as np

    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, (list, tuple)):
        outputs = outputs[0]
    return np.asarray(outputs)


def get_task(name: str) -> Task:
    """The Task of package zoo.tasks.<name>, imported by name (the engine knows no concrete task)."""
    from zoo.registry import TASKS

    if name not in TASKS:
        raise UsageError(f"Unknown task {name!r}; zoo knows {', '.join(TASKS)}.")
    return importlib.import_module(f"zoo.tasks.{name}").TASK


def parse_options(cls: type, raw: Any, *, task: str = "") -> Any:
    """A frozen options dataclass from a dict of key -> value (CLI strings are converted to the
    field's type: int, float, bool, str, or a comma list for tuples). Each dataclass validates
    its values in __post_init__."""
    if isinstance(raw, cls):
        return raw
    raw = dict(raw or {})
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        valid = ", ".join(sorted(known)) or "none"
        raise UsageError(f"Unknown {task + ' ' if task else ''}option(s) {', '.join(unknown)} for --opt. "
                         f"Valid: {valid}.")
    values = {}
    for key, value in raw.items():
        values[key] = _convert(key, value, known[key])
    return cls(**values)


def _convert(key: str, value: Any, spec) -> Any:
    if not isinstance(value, str):
        return value
    kind = str(spec.type)
    text = value.strip()
    try:
        if kind.startswith("bool"):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if text.lower() == "none" and "None" in kind:
            return None
        if kind.startswith("int"):
            return int(text)
        if kind.startswith("float"):
            return float(text)
        if kind.startswith("tuple"):
            return tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise UsageError(f"--opt {key}={value!r} is not a valid {kind}. Give e.g. --opt {key}=...") from None
    return text
