"""Semantic segmentation: images/ + masks/ (or Pascal VOC) -> an FCN; a class for every pixel.

    task.py     SegmentationTask, the hooks the engine drives
    options.py  SegmentationOptions, its `--opt key=value` (skip_bad, class_weights, FCN head)
    data.py     the layouts (images/ + masks/, train/ + val/, VOC), checked decoding, split, tf.data
    masks.py    mask PNGs: read (palette, gray, VOC colours) and write (VOC palette)
    augment.py  flip and scale-crop moving image and mask together; per-pixel class weights
    train.py    the model a run starts from (a registry FCN and its weights, or a model to continue)
    loss.py     cross-entropy ignoring 255; class weights (median frequency)
    metrics.py  MeanIoU while training; a confusion matrix for mIoU, per-class IoU, pixel accuracy
    predict.py  scores -> a mask at the original size and class fractions
    draw.py     the overlay of `zoo predict --save-dir`; IoU bars and validation examples

Predict records get "mask" (path of a PNG of class indices at the original image size, VOC
palette) and "classes" ({label: fraction of the pixels}, largest first). With `save_dir` masks go
there as <stem>_mask.png next to <stem>_overlay.png; without it, into a new temporary folder per
run (zoo-masks-XXXXXXXX under the temp dir, TMPDIR), named by the records.

Importing this package loads no TensorFlow: the hooks import it when they run.
"""

from __future__ import annotations

from zoo.tasks.segmentation.options import SegmentationOptions
from zoo.tasks.segmentation.task import SegmentationTask

TASK = SegmentationTask()

__all__ = ["TASK", "SegmentationOptions", "SegmentationTask"]
