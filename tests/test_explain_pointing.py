"""The pointing game, small: a tiny CNN trained here on one-shape-per-image synthetic data
(scripts/make_shapes_pointing.py) must put its Grad-CAM peak inside the shape's box on held-out
images, well above chance, and pass the model-randomisation sanity check.

The full-size measurement (resnet18 from scratch at 128 px, 60 held-out images, every method) is
scripts/pointing_game.py; its table is in the README.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import script_module

ROOT = Path(__file__).resolve().parents[1]
SIZE = 64


def _shapes():
    return script_module("make_shapes_pointing")


def _tiny_cnn():
    import keras

    from zoo.modeldir import attach_meta

    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255, name="preprocess")(inputs)
    for n, (filters, pool) in enumerate(((16, True), (32, True), (64, False), (64, False)), start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{n}_conv")(x)
        # momentum 0.9: the moving statistics settle within the few hundred steps of this test
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"block{n}_bn")(x)
        x = keras.layers.ReLU(name=f"block{n}_relu")(x)
        if pool:
            x = keras.layers.MaxPooling2D(name=f"block{n}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs)
    attach_meta(model, {"arch": "tiny", "task": "classification", "labels": ["square", "circle", "triangle"],
                        "input_shape": [SIZE, SIZE, 3]})
    return model


@pytest.mark.slow
def test_gradcam_points_at_the_shape(tmp_path):
    import keras

    import zoo
    from zoo.explaining.pointing import chance_level, pointing_game
    from zoo.explaining.sanity import DEFAULT_THRESHOLD

    keras.utils.set_random_seed(0)
    shapes = _shapes()
    x, y, _ = shapes.make_arrays(480, size=SIZE, seed=0)
    model = _tiny_cnn()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x.astype("float32"), y, epochs=12, batch_size=32, verbose=0)
    tx, ty, boxes = shapes.make_arrays(48, size=SIZE, seed=1)
    accuracy = float((model.predict(tx.astype("float32"), verbose=0).argmax(axis=1) == ty).mean())
    assert accuracy >= 0.8, f"the tiny CNN did not learn the shapes (held-out accuracy {accuracy:.2f})"
    peaks, correlations = [None] * len(ty), []
    for k, label in enumerate(shapes.CLASSES):  # each image explained for its true class
        where = np.flatnonzero(ty == k)
        records = zoo.explain([tx[i] for i in where], model=model, method="gradcam", target=label, sanity=True)
        for i, record in zip(where, records):
            assert record["ok"], record
            peaks[i] = record["peak"]
            correlations.append(record["sanity"])
    score = pointing_game(peaks, boxes)
    chance = chance_level(boxes, [(SIZE, SIZE)] * len(boxes))
    assert score >= 0.8, f"Grad-CAM pointing game {score:.2f} (chance {chance:.2f}, accuracy {accuracy:.2f})"
    assert score > chance + 0.5
    rho = float(np.mean([c for c in correlations if c is not None]))
    assert rho < DEFAULT_THRESHOLD, f"Grad-CAM maps barely change with re-initialised top layers (Spearman {rho:.2f})"
