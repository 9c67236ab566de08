"""Training pieces of the captioning task: backbone choice, loss, metric, feature caching.

Training is teacher forcing: the decoder reads <start> w1 .. wn and predicts w1 .. wn <end>;
padding (id 0) is left out of the loss. With a frozen encoder the pooled features are computed
once per image (`encode_images`) and only the decoder trains, on (features, tokens): an image
with five captions costs one encoder pass, not five per epoch.
"""

from __future__ import annotations

import numpy as np

from zoo.tasks.captioning.text import PAD_ID

DEFAULT_BACKBONE = "resnet50"
TINY = "tiny"  # Show and Tell's own small conv encoder (tests, synthetic data): no weights to load


def backbone_and_weights(opts) -> tuple[str, str | None]:
    """(backbone name, its weights or None): --backbone (default resnet50) and --weights, which
    name the backbone's weights here ("auto": the registry's default for that backbone)."""
    backbone = opts.backbone or DEFAULT_BACKBONE
    if backbone == TINY:
        return backbone, None
    from zoo.training.options import chosen_weights

    return backbone, chosen_weights(backbone, opts.weights)


def caption_loss():
    """Mean cross-entropy over the non-padding target tokens (logits in, ids out)."""
    import keras

    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID, name="caption_loss")


def token_accuracy():
    """Share of non-padding target tokens predicted exactly (teacher forcing)."""
    import keras

    from zoo.models.show_and_tell import token_accuracy as fn

    return keras.metrics.MeanMetricWrapper(fn, name="token_accuracy")


def encode_images(model, images: np.ndarray, *, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
    """Pooled encoder features of uint8/float images (the encoder runs once per image)."""
    encoder = model.get_layer("encoder")
    return np.asarray(encoder.predict(images.astype("float32"), batch_size=batch_size, verbose=verbose), "float32")

