"""Classifier models the task trains: a TF-Hub / SavedModel feature extractor with a new head,
and a fresh classifier for a pretrained backbone whose labels differ from the data's."""

from __future__ import annotations

import numpy as np


def hub_classifier(path: str, num_classes: int, shape: tuple[int, int, int], *, scale: float, dropout: float):
    """A TF-Hub / SavedModel feature extractor (trainable) + a new float32 softmax classifier.
    Pixels in [0, 255] are multiplied by `scale` first: 1/255 gives TF-Hub's [0, 1] image convention."""
    import keras

    from zoo.modeldir import attach_meta
    from zoo.pretrained.hub import hub_feature_extractor

    inputs = keras.Input(shape)
    x = keras.layers.Rescaling(scale, name="hub_rescale")(inputs)
    x = hub_feature_extractor(path, trainable=True, name="hub_features")(x)
    if len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    x = keras.layers.Dense(num_classes, dtype="float32", name="predictions_dense")(x)
    out = keras.layers.Activation("softmax", dtype="float32", name="predictions")(x)
    model = keras.Model(inputs, out, name="hub_classifier")
    attach_meta(model, {"arch": f"hub:{path}", "weights": {"origin": path},
                        "preprocessing": {"mode": "unit", "scale": scale, "mean": [0.0], "std": [1.0],
                                          "in_model": True}})
    return model


def reset_classifier(model, *, seed: int) -> None:
    """Start the last Dense layer of the head from scratch (Glorot, zero bias): when the new
    labels differ from the weights' classes, the old classifier's rows mean nothing."""
    import keras

    from zoo.training.freeze import head_layers

    dense = [layer for layer in head_layers(model) if type(layer).__name__ == "Dense"]
    if not dense:
        return
    layer = dense[-1]
    layer.kernel.assign(keras.initializers.GlorotUniform(seed=seed)(layer.kernel.shape))
    if layer.bias is not None:
        layer.bias.assign(np.zeros(layer.bias.shape, np.float32))
