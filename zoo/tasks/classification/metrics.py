"""Classification metrics: accuracy, top-5, per-class precision/recall/F1, confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np


def predict_probs(model, x: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's outputs over `x`, batch by batch. Plain calls, not model.predict: under a
    multi-worker strategy predict would shard the data between workers."""
    import tensorflow as tf

    call = tf.function(lambda batch: model(tf.cast(batch, tf.float32), training=False))
    outs = [np.asarray(call(x[i : i + batch_size]), np.float32) for i in range(0, len(x), batch_size)]
    return np.concatenate(outs) if outs else np.zeros((0, model.output_shape[-1]), np.float32)


def classification_metrics(probs: np.ndarray, y: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """accuracy, top5_accuracy, per-class precision/recall/F1/support, confusion matrix (rows = truth)."""
    k = len(labels)
    pred = probs.argmax(axis=1)
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y, pred), 1)
    top = np.argsort(-probs, axis=1)[:, : min(5, k)]
    per_class = {}
    for i, name in enumerate(labels):
        tp = cm[i, i]
        p = tp / cm[:, i].sum() if cm[:, i].sum() else 0.0
        r = tp / cm[i].sum() if cm[i].sum() else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        per_class[name] = {"precision": float(p), "recall": float(r), "f1": float(f1), "support": int(cm[i].sum())}
    present = [v for v in per_class.values() if v["support"]]
    return {
        "accuracy": float((pred == y).mean()) if len(y) else 0.0,
        "top5_accuracy": float((top == y[:, None]).any(axis=1).mean()) if len(y) else 0.0,
        "macro_f1": float(np.mean([v["f1"] for v in present])) if present else 0.0,
        "num_images": int(len(y)),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "labels": list(labels),
    }
