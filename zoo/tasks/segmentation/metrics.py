"""Segmentation metrics.

- `mean_iou_metric`: keras.metrics.MeanIoU during training (reported as `miou`).
- `ConfusionMatrix`: accumulates (truth, prediction) pixel counts, ignore excluded, and gives
  mean IoU, per-class IoU and pixel accuracy. Classes absent from both truth and prediction do
  not count in the mean (keras.metrics.MeanIoU does the same, so the two agree).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zoo.tasks.segmentation.masks import IGNORE_INDEX


def mean_iou_metric(num_classes: int, *, name: str = "miou"):
    """keras.metrics.MeanIoU on probabilities (argmax inside), ignoring 255."""
    import keras

    return keras.metrics.MeanIoU(num_classes=num_classes, sparse_y_true=True, sparse_y_pred=False,
                                 ignore_class=IGNORE_INDEX, name=name)


def predict_masks(model, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Argmax class of every pixel for images already at the model's size."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(images.astype(np.float32)).batch(batch_size)
    preds = [np.asarray(model(batch, training=False)).argmax(axis=-1) for batch in ds]
    return np.concatenate(preds) if preds else np.zeros((0,) + images.shape[1:3], np.int64)


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
