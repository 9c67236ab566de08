"""Per-task behaviour behind one interface (see zoo/tasks/base.py): what predict outputs and
draws, how data is read for training, the loss and the metrics.

    get_task("detection") -> the Task object of zoo/tasks/detection.py
"""

from __future__ import annotations

import importlib

_MODULES = {
    "classification": "zoo.tasks.classification",
    "detection": "zoo.tasks.detection",
    "segmentation": "zoo.tasks.segmentation",
    "captioning": "zoo.tasks.captioning",
}


def get_task(name: str):
    from zoo.errors import UsageError

    module = _MODULES.get(name)
    if module is None:
        raise UsageError(f"Unknown task {name!r}; zoo knows {', '.join(_MODULES)}.")
    return importlib.import_module(module).TASK
