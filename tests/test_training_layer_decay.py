"""Layer-wise LR decay is an optimizer mechanism: deeper blocks get proportionally smaller updates."""

from __future__ import annotations

import numpy as np
import pytest


def _net():
    import keras

    inp = keras.Input((6,))
    x = keras.layers.Dense(6, name="block1_dense")(inp)
    x = keras.layers.Dense(6, name="block2_dense")(x)
    x = keras.layers.Dense(6, name="block3_dense")(x)
    out = keras.layers.Dense(3, name="predictions")(x)
    return keras.Model(inp, out)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_updates_shrink_by_decay_per_block(optimizer):
    import keras
    import tensorflow as tf

    from zoo.training.layer_decay import apply_layer_decay, decay_scales

    model = _net()
    scales = decay_scales(model, decay=0.5)
    assert scales["predictions/kernel"] == 1.0
    assert scales["block3_dense/kernel"] == 0.5 and scales["block1_dense/kernel"] == 0.125
    lr = 0.1
    opt = keras.optimizers.SGD(lr) if optimizer == "sgd" else keras.optimizers.Adam(lr)
    apply_layer_decay(opt, scales)
    x = tf.constant(np.random.default_rng(0).normal(size=(8, 6)), tf.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model(x) ** 2)
    grads = tape.gradient(loss, model.trainable_variables)
    before = [v.numpy().copy() for v in model.trainable_variables]
    opt.apply(grads, model.trainable_variables)
    for v, b, g in zip(model.trainable_variables, before, grads):
        delta = b - v.numpy()
        g = g.numpy()
        if optimizer == "sgd":  # delta = lr * scale * grad
            step = g
        else:
            # Keras Adam's first step: m = (1-b1) g, v = (1-b2) g^2, alpha = lr sqrt(1-b2) / (1-b1), so
            # delta = lr * scale * g / (|g| + eps / sqrt(1-b2)): sign(g) except where |g| is near eps.
            step = g / (np.abs(g) + opt.epsilon / np.sqrt(1.0 - opt.beta_2))
        expected = lr * scales[v.path] * step
        np.testing.assert_allclose(delta, expected, rtol=1e-4, atol=1e-6)


def test_optimizer_with_decay_still_saves_as_its_own_class(tmp_path):
    import keras

    from zoo.training.layer_decay import apply_layer_decay, decay_scales

    model = _net()
    opt = apply_layer_decay(keras.optimizers.AdamW(1e-3), decay_scales(model, decay=0.7))
    model.compile(opt, "mse")
    model.fit(np.zeros((4, 6)), np.zeros((4, 3)), verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert type(loaded.optimizer).__name__ == "AdamW"
