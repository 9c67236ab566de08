"""Image classification: class folders or a CSV `path,label` -> a classifier; top-k labels.

    task.py     ClassificationTask, the hooks the engine drives, and its `--opt` options
    data.py     the readers (class folders, CSV), decoding, split, class weights, augmentation
    model.py    a TF-Hub extractor with a new head; a fresh classifier for new labels
    metrics.py  accuracy, top-5, per-class precision/recall/F1, confusion matrix
    draw.py     an input with its predictions; the confusion matrix plot

Importing this package loads no TensorFlow: the hooks import it when they run.
"""

from __future__ import annotations

from zoo.tasks.classification.task import ClassificationOptions, ClassificationTask

TASK = ClassificationTask()

__all__ = ["TASK", "ClassificationOptions", "ClassificationTask"]
