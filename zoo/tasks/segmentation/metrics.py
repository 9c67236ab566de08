"""Segmentation loss and metrics.

- `masked_cross_entropy`: pixel-wise cross-entropy that skips the ignore label (255), mean over
  the valid pixels of the batch; class weights as per-pixel sample weights.
- `ConfusionMatrix`: accumulates (truth, prediction) pixel counts, ignore excluded, and gives
  mean IoU, per-class IoU and pixel accuracy. Classes absent from both truth and prediction do
  not count in the mean (keras.metrics.MeanIoU does the same, so the two agree).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

IGNORE_INDEX = 255


def masked_cross_entropy():
    """Per-pixel cross-entropy on probabilities, mean over the pixels that are not 255.

    Keras's own SparseCategoricalCrossentropy(ignore_class=255): nothing custom is saved with
    the model, so model.keras loads anywhere in safe mode. Class weights arrive as per-pixel
    sample weights (`pixel_weights`), normalised so that they average 1 over the training pixels.
    """
    return keras.losses.SparseCategoricalCrossentropy(ignore_class=IGNORE_INDEX, name="masked_cross_entropy")


def normalise_class_weights(weights, counts) -> np.ndarray:
    """Scale class weights so that their mean over the training pixels is 1: the weighted mean over
    valid pixels that Keras computes (sum w*ce / valid pixels) then matches sum w*ce / sum w on average."""
    weights = np.asarray(weights, np.float64)
    counts = np.asarray(counts, np.float64)
    mean = (weights * counts).sum() / max(counts.sum(), 1.0)
    return (weights / mean if mean > 0 else weights).astype(np.float32)


def pixel_weights(masks, table):
    """Sample weights (N, H, W) for masks: table[class], 0 on ignored pixels (TensorFlow)."""
    import tensorflow as tf

    masks = tf.cast(masks, tf.int32)
    valid = tf.not_equal(masks, IGNORE_INDEX)
    safe = tf.where(valid, masks, 0)
    return tf.gather(tf.constant(table, tf.float32), safe) * tf.cast(valid, tf.float32)


def mean_iou_metric(num_classes: int, *, name: str = "miou"):
    """keras.metrics.MeanIoU on probabilities (argmax inside), ignoring 255."""
    return keras.metrics.MeanIoU(num_classes=num_classes, sparse_y_true=True, sparse_y_pred=False,
                                 ignore_class=IGNORE_INDEX, name=name)


class ConfusionMatrix:
    """num_classes x num_classes pixel counts, rows = truth, columns = prediction."""

    def __init__(self, num_classes: int):
        self.num_classes = int(num_classes)
        self.matrix = np.zeros((self.num_classes, self.num_classes), np.int64)

    def update(self, truth: np.ndarray, prediction: np.ndarray) -> None:
        truth = np.asarray(truth).reshape(-1).astype(np.int64)
        prediction = np.asarray(prediction).reshape(-1).astype(np.int64)
        if truth.shape != prediction.shape:
            raise ValueError(f"truth has {truth.size} pixels and prediction {prediction.size}.")
        keep = (truth != IGNORE_INDEX) & (truth < self.num_classes)
        k = self.num_classes
        self.matrix += np.bincount(truth[keep] * k + prediction[keep], minlength=k * k).reshape(k, k)

    def iou(self) -> np.ndarray:
        """Per-class IoU; NaN where the class is in neither truth nor prediction."""
        tp = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / np.maximum(union, 1), np.nan)

    def scores(self, labels: list[str] | None = None) -> dict[str, Any]:
        """miou, pixel_accuracy, mean_accuracy, per_class_iou {label: iou or None}, pixels, confusion_matrix."""
        labels = list(labels or [str(i) for i in range(self.num_classes)])
        iou = self.iou()
        tp = np.diag(self.matrix)
        total = self.matrix.sum()
        support = self.matrix.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.where(support > 0, tp / np.maximum(support, 1), np.nan)
        present = ~np.isnan(iou)
        return {
            "miou": float(np.nanmean(iou)) if present.any() else 0.0,
            "pixel_accuracy": float(tp.sum() / total) if total else 0.0,
            "mean_accuracy": float(np.nanmean(recall)) if (support > 0).any() else 0.0,
            "per_class_iou": {labels[i]: (None if np.isnan(v) else round(float(v), 6)) for i, v in enumerate(iou)},
            "pixels": int(total),
            "confusion_matrix": self.matrix.tolist(),
            "labels": labels,
        }
