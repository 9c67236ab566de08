"""Feature caching: with a frozen base and no augmentation the base's output never changes, so it
is computed once and the head trains on it (epochs cost a head forward/backward only). The head
model shares its layers with the full model, so training it trains the full model's head.
"""

from __future__ import annotations

import numpy as np


def split_head(model):
    """(base model, head model) sharing layers with `model`, or None if the head is not a chain."""
    import keras

    from zoo.training.freeze import head_layers

    head = head_layers(model)
    if not head or len(model.outputs) != 1:
        return None
    for prev, layer in zip(head, head[1:]):
        if len(layer._inbound_nodes) != 1 or layer.input is not prev.output:
            return None
    if len(head[0]._inbound_nodes) != 1 or head[-1].output is not model.outputs[0]:
        return None
    features = head[0].input
    base = keras.Model(model.inputs, features, name=f"{model.name}_base")
    inp = keras.Input(shape=tuple(features.shape[1:]), dtype=features.dtype, name="features")
    x = inp
    for layer in head:
        x = layer(x)
    return base, keras.Model(inp, x, name=f"{model.name}_head")


def compute(base, dataset, *, batch_size: int, verbose: int = 0) -> tuple[np.ndarray, tuple]:
    """Base features of an unbatched (x, y[, w]) dataset, and the rest of its elements, in order."""
    import tensorflow as tf

    xs = dataset.map(lambda *t: t[0]).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    feats = base.predict(xs, verbose=verbose)
    rest = [np.stack(list(dataset.map(lambda *t, i=i: t[i]).as_numpy_iterator()))
            for i in range(1, len(dataset.element_spec))]
    return np.asarray(feats, np.float32), tuple(rest)
