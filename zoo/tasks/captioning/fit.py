"""Loss, metric, token tables, feature caching and caption generation for Show and Tell, on
arrays (used by the captioning task's training and prediction sides).

Training is teacher forcing: the decoder reads <start> w1 .. wn and predicts w1 .. wn <end>;
padding (id 0) is left out of the loss (`caption_loss`). With a frozen encoder the pooled features
are computed once per image (`encode_images`) and only the decoder trains, on (features, tokens):
an image with five captions costs one encoder pass, not five per epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zoo.tasks.captioning.text import PAD_ID, decode, encode


def caption_loss():
    """Mean cross-entropy over the non-padding target tokens (logits in, ids out)."""
    import keras

    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID, name="caption_loss")


def token_accuracy():
    """Share of non-padding target tokens predicted exactly (teacher forcing)."""
    import keras

    from zoo.models.show_and_tell import token_accuracy as fn

    return keras.metrics.MeanMetricWrapper(fn, name="token_accuracy")


def caption_table(items: Sequence[tuple[Any, list[str]]], vocab: Sequence[str], *, max_length: int):
    """(image index per caption, token ids (n, max_length + 2)) for (image, captions) items."""
    index = np.array([i for i, (_, caps) in enumerate(items) for _ in caps], "int32")
    tokens = encode([c for _, caps in items for c in caps], vocab, max_length=max_length)
    return index, tokens


def encode_images(model, images: np.ndarray, *, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
    """Pooled encoder features of uint8/float images (the encoder runs once per image)."""
    encoder = model.get_layer("encoder")
    return np.asarray(encoder.predict(images.astype("float32"), batch_size=batch_size, verbose=verbose), "float32")


def _decoding_models(model, *, from_features: bool):
    from zoo.models.show_and_tell import encoder_model, features_to_state_model, step_model

    cache = getattr(model, "_zoo_caption_models", None)
    if cache is None:
        cache = {}
        object.__setattr__(model, "_zoo_caption_models", cache)  # not model state: keep it off Keras tracking
    key = "features" if from_features else "image"
    if key not in cache:
        cache[key] = features_to_state_model(model) if from_features else encoder_model(model)
    if "step" not in cache:
        cache["step"] = step_model(model)
    return cache[key], cache["step"]


def generate(model, inputs: np.ndarray, *, vocab: Sequence[str], beam_size: int = 3, max_length: int = 20,
             alpha: float = 1.0, from_features: bool = False, batch_size: int = 64) -> list[dict]:
    """Captions for a batch of images (or encoder features): [{"caption", "log_prob", "tokens"}].

    beam_size 1 is greedy decoding; alpha is the length-normalisation exponent of beam search.
    """
    from zoo.tasks.captioning.decode import beam_search, greedy

    start, step = _decoding_models(model, from_features=from_features)

    def step_fn(tokens, h, c):
        logp, h, c = step([tokens, h, c], training=False)
        return np.asarray(logp, "float64"), np.asarray(h), np.asarray(c)

    out: list[dict] = []
    for lo in range(0, len(inputs), batch_size):
        chunk = np.asarray(inputs[lo : lo + batch_size], "float32")
        h, c = start(chunk, training=False)
        h, c = np.asarray(h), np.asarray(c)
        if int(beam_size) == 1:
            hyps = greedy(step_fn, h, c, max_length=max_length)
        else:
            hyps = beam_search(step_fn, h, c, beam_size=beam_size, max_length=max_length, alpha=alpha)
        for hyp in hyps:
            out.append({"caption": decode(hyp.ids, vocab), "log_prob": hyp.log_prob,
                        "tokens": [vocab[i] if 0 <= i < len(vocab) else "[UNK]" for i in hyp.ids]})
    return out
