"""Segmentation loss: pixel-wise cross-entropy that skips the ignore label (255), and the class
weights that arrive with the batches as per-pixel sample weights."""

from __future__ import annotations

import numpy as np

from zoo.errors import UsageError
from zoo.tasks.segmentation.masks import IGNORE_INDEX


def masked_cross_entropy():
    """Per-pixel cross-entropy on probabilities, mean over the pixels that are not 255.

    Keras's own SparseCategoricalCrossentropy(ignore_class=255): nothing custom is saved with
    the model, so model.keras loads anywhere in safe mode. Class weights arrive as per-pixel
    sample weights (`pixel_weights`), normalised so that they average 1 over the training pixels.
    """
    import keras

    return keras.losses.SparseCategoricalCrossentropy(ignore_class=IGNORE_INDEX, name="masked_cross_entropy")


def class_weight_table(choice: str | tuple[float, ...], counts: np.ndarray) -> np.ndarray | None:
    """Per-class weights for the `class_weights` option ("none", "median" or one number per class),
    normalised over the training pixels `counts`; None when unweighted."""
    if choice == "none":
        return None
    weights = median_frequency_weights(counts) if choice == "median" else np.asarray(choice, np.float32)
    if len(weights) != len(counts):
        raise UsageError(f"`class_weights` needs {len(counts)} numbers (one per class). "
                         f"Received {len(weights)}: {','.join(f'{w:g}' for w in weights)}.")
    return normalise_class_weights(weights, counts)


def median_frequency_weights(counts: np.ndarray) -> np.ndarray:
    """Eigen & Fergus median-frequency balancing: median(freq) / freq; absent classes get 0."""
    counts = np.asarray(counts, np.float64)
    freq = counts / max(counts.sum(), 1.0)
    present = freq > 0
    weights = np.zeros_like(freq)
    if present.any():
        weights[present] = np.median(freq[present]) / freq[present]
    return weights.astype(np.float32)


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
