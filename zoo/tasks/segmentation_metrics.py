"""Segmentation loss and metrics.

- `MaskedCrossEntropy`: pixel-wise cross-entropy that skips the ignore label (255) and can weight
  classes; the mean is over the valid pixels of the batch (torchvision's
  CrossEntropyLoss(ignore_index=255, weight=w): sum(w_y * ce) / sum(w_y)).
- `ConfusionMatrix`: accumulates (truth, prediction) pixel counts, ignore excluded, and gives
  mean IoU, per-class IoU and pixel accuracy. Classes absent from both truth and prediction do
  not count in the mean (keras.metrics.MeanIoU does the same, so the two agree).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

IGNORE_INDEX = 255


@keras.saving.register_keras_serializable(package="zoo")
class MaskedCrossEntropy(keras.losses.Loss):
    """Sparse categorical cross-entropy per pixel, ignoring `ignore_index`, optional class weights."""

    def __init__(self, ignore_index: int = IGNORE_INDEX, class_weights=None, from_logits: bool = False,
                 name: str = "masked_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.ignore_index = int(ignore_index)
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        ops = keras.ops
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:-1]), "int32")
        valid = ops.not_equal(y_true, self.ignore_index)
        safe = ops.where(valid, y_true, 0)
        ce = keras.losses.sparse_categorical_crossentropy(safe, y_pred, from_logits=self.from_logits)
        weight = ops.cast(valid, "float32")
        if self.class_weights is not None:
            weight = weight * ops.take(ops.convert_to_tensor(self.class_weights, "float32"), safe)
        # Keras averages what we return over every pixel of the batch; rescale so that the
        # result is the weighted mean over the valid pixels only.
        total = ops.cast(ops.size(weight), "float32")
        return ce * weight * (total / ops.maximum(ops.sum(weight), 1e-6))

    def get_config(self):
        return {**super().get_config(), "ignore_index": self.ignore_index,
                "class_weights": self.class_weights, "from_logits": self.from_logits}


CUSTOM_OBJECTS = {"zoo>MaskedCrossEntropy": MaskedCrossEntropy}


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
