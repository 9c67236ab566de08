"""zoo.freeze trainable counts, batch-norm handling, blocks, and zoo.replace_head."""

from __future__ import annotations

import numpy as np
import pytest


def _net():
    import keras

    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="block1_conv")(inp)  # 3*3*3*4+4 = 112
    x = keras.layers.BatchNormalization(name="block1_bn")(x)  # 16 (8 trainable, 8 moving)
    x = keras.layers.Conv2D(4, 3, name="block2_conv")(x)  # 148
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    out = keras.layers.Dense(5, activation="softmax", name="predictions")(x)  # 25
    return keras.Model(inp, out)


def test_freeze_base_leaves_only_the_head_trainable():
    import zoo

    model = _net()
    report = zoo.freeze(model)
    assert report["trainable_params"] == 25
    assert report["non_trainable_params"] == 112 + 16 + 148
    assert [l.name for l in model.layers if l.trainable and l.weights] == ["predictions"]
    assert report["frozen_blocks"] == 2


def test_freeze_until_blocks_and_names_and_bn_modes():
    import zoo

    model = _net()
    r = zoo.freeze(model, until=1)  # block1 frozen; block2 and head train; BN frozen anyway
    assert r["trainable_params"] == 148 + 25
    r = zoo.freeze(model, until=0, bn="frozen")  # everything but batch norm
    assert r["trainable_params"] == 112 + 148 + 25
    assert not model.get_layer("block1_bn").trainable
    r = zoo.freeze(model, until=0, bn="train")
    assert r["trainable_params"] == 112 + 8 + 148 + 25
    r = zoo.freeze(model, until="block1_bn")
    assert r["trainable_params"] == 148 + 25
    r = zoo.freeze(model, until=-1)  # all but the last block
    assert r["trainable_params"] == 148 + 25


def test_freeze_rejects_unknown_layer_with_a_usage_error():
    import zoo
    from zoo.errors import UsageError

    with pytest.raises(UsageError, match="until"):
        zoo.freeze(_net(), until="conv99")
    with pytest.raises(UsageError, match="bn"):
        zoo.freeze(_net(), bn="off")


def test_frozen_batch_norm_keeps_its_statistics_while_training():
    import zoo

    model = _net()
    zoo.freeze(model, until=0, bn="frozen")
    model.compile("adam", "categorical_crossentropy")
    before = [w.numpy().copy() for w in model.get_layer("block1_bn").weights]
    x = np.random.default_rng(0).normal(5, 3, (16, 8, 8, 3)).astype("float32")
    model.fit(x, np.eye(5)[np.arange(16) % 5], epochs=1, verbose=0)
    for a, b in zip(before, model.get_layer("block1_bn").weights):
        np.testing.assert_array_equal(a, b.numpy())


def test_replace_head_keeps_base_weights_and_makes_a_float32_classifier():
    import zoo

    model = _net()
    new = zoo.replace_head(model, 3)
    assert new.output_shape == (None, 3)
    assert new.get_layer("block2_conv") is model.get_layer("block2_conv")
    assert new.layers[-1].dtype_policy.compute_dtype == "float32"
    out = new.predict(np.zeros((2, 8, 8, 3), "float32"), verbose=0)
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)


def test_freeze_on_registry_lenet5_freezes_convs_and_trains_the_classifier():
    import zoo

    model = zoo.build("lenet5", num_classes=4)
    report = zoo.freeze(model)
    head = sum(int(np.prod(w.shape)) for n in ("fc1", "fc2", "predictions") for w in model.get_layer(n).weights)
    assert report["trainable_params"] == head
    assert report["trainable_params"] + report["non_trainable_params"] == model.count_params()
