"""One package per task (classification, detection, segmentation, captioning), each subclassing
the engine's zoo.training.task.Task and exposing it as `TASK`."""

from __future__ import annotations


def get_task(name: str):
    from zoo.training.task import get_task as _get

    return _get(name)
