"""zoo.evaluate(model, data) -> dict: the task's metrics on labelled data (`zoo evaluate --json`)."""

from __future__ import annotations

import os
from typing import Any


def evaluate(model, data: str | os.PathLike, *, batch_size: int = 32, verbose: int = 0) -> dict[str, Any]:
    """Metrics of `model` on `data`, dispatched to the model's task.

    Args:
        model: a model directory, a .keras file, a registry name (pretrained weights) or a keras.Model from zoo.
        data: labelled data in the task's format (classification: class folders named by the labels, or a CSV).
    Returns:
        classification: accuracy, top5_accuracy, macro_f1, per_class {label: precision, recall, f1,
        support}, confusion_matrix (rows = truth), labels, num_images, skipped; plus "task" and "model".
    """
    from pathlib import Path

    from zoo.errors import UsageError
    from zoo.modeldir import reference_kind, resolve_model

    name = str(model) if isinstance(model, (str, os.PathLike)) else None
    weights = _pretrained(name) if reference_kind(model, exported=True) == "name" else None
    if not Path(data).exists():  # before the model loads: a typo fails in a second
        raise UsageError(f"DATA {str(data)!r} does not exist. Give labelled data in the model's task format.")
    model, meta = resolve_model(model, weights=weights, exported=True)
    task_name = meta["task"]
    from zoo.training.task import get_task

    scores = get_task(task_name).evaluate(model, meta, data, {"batch_size": batch_size, "verbose": verbose})
    return {"task": task_name, "model": name or meta.get("arch"), **scores}


def _pretrained(name: str) -> str:
    from zoo.registry import default_weights

    tag = default_weights(name)
    if tag is None:
        from zoo.errors import UsageError

        raise UsageError(f"{name!r} has no pretrained weights to evaluate; give a model directory from `zoo finetune`.")
    return tag
