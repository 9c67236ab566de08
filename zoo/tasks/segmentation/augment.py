"""Paired augmentation on the trainer's batches: image and mask move together, and per-pixel
class weights are computed after it, from the augmented masks, so they move with them."""

from __future__ import annotations

import numpy as np

from zoo.errors import UsageError
from zoo.tasks.segmentation.masks import IGNORE_INDEX

AUGMENTS = {"none": None, "light": (0.75, 1.25, False), "strong": (0.5, 2.0, True)}  # (min scale, max scale, colour)


def augmenter(level: str, *, seed: int = 0):
    """batched (images float32 NxHxWxC, masks int32 NxHxW) -> the same, with the same random flip
    and scale-crop applied to image and mask (bilinear for images, nearest for masks; pixels
    zoomed out of the frame are ignore in the mask), plus colour jitter on the image for "strong"."""
    if level not in AUGMENTS:
        raise UsageError(f"`augment` must be one of {', '.join(AUGMENTS)}. Received: augment={level!r}.")
    if AUGMENTS[level] is None:
        return None
    lo, hi, colour = AUGMENTS[level]
    import tensorflow as tf

    rng = tf.random.Generator.from_seed(seed)

    def apply(images, masks, *rest):
        n = tf.shape(images)[0]
        flip = rng.uniform([n]) < 0.5
        images = tf.where(flip[:, None, None, None], tf.reverse(images, [2]), images)
        masks = tf.where(flip[:, None, None], tf.reverse(masks, [2]), masks)
        # A box of 1/scale of the frame, anywhere it overlaps; boxes beyond [0, 1] zoom out.
        scale = tf.exp(rng.uniform([n], np.log(lo), np.log(hi)))
        extent = 1.0 / scale
        y0 = rng.uniform([n]) * (1.0 - extent)
        x0 = rng.uniform([n]) * (1.0 - extent)
        boxes = tf.stack([y0, x0, y0 + extent, x0 + extent], axis=1)
        idx = tf.range(n)
        size = tf.shape(images)[1:3]
        images = tf.image.crop_and_resize(images, boxes, idx, size, method="bilinear", extrapolation_value=0.0)
        m = tf.image.crop_and_resize(tf.cast(masks[..., None], tf.float32), boxes, idx, size, method="nearest",
                                     extrapolation_value=float(IGNORE_INDEX))
        masks = tf.cast(tf.round(m[..., 0]), masks.dtype)
        if colour:
            gain = rng.uniform([n, 1, 1, 1], 0.75, 1.25)
            shift = rng.uniform([n, 1, 1, 1], -25.0, 25.0)
            mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
            images = (images - mean) * gain + mean + shift
        images = tf.clip_by_value(images, 0.0, 255.0)
        return (images, masks, *rest)

    return apply


def batch_hook(augment, class_weights):
    """The trainer's per-batch hook: paired augmentation, then per-pixel class weights as the
    batch's sample weights (None: neither)."""
    if class_weights is None:
        return augment
    from zoo.tasks.segmentation.loss import pixel_weights

    table = [float(w) for w in class_weights]

    def apply(images, masks, *rest):
        if augment is not None:
            images, masks = augment(images, masks)[:2]
        return images, masks, pixel_weights(masks, table)

    return apply
