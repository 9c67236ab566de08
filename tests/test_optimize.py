"""zoo.inference_model: batch norm folded, dropout gone, preprocessing fused where exact, and the
outputs equal to the original's (1e-4) with random, non-trivial batch-norm statistics."""

from __future__ import annotations

import numpy as np
import pytest

import keras

import zoo
from zoo.errors import UsageError
from zoo.modeldir import attach_meta, get_meta
from zoo.optimize import inference_model, optimize_report

L = keras.layers


def _randomize_bn(model, seed=0):
    """Moving statistics and affine parameters far from the identity, so folding is really tested."""
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        if isinstance(layer, L.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, n))
            layer.moving_variance.assign(rng.uniform(0.3, 2.0, n))
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.5, 1.5, n))
            if layer.center:
                layer.beta.assign(rng.normal(0, 0.3, n))


def _count(model, cls):
    return sum(isinstance(layer, cls) for layer in model._flatten_layers())


def _assert_same(a, b, tol=1e-4):
    fa, fb = keras.tree.flatten(a), keras.tree.flatten(b)
    assert len(fa) == len(fb)
    for x, y in zip(fa, fb):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape
        scale = max(1.0, float(np.abs(x).max()))
        assert float(np.abs(x - y).max()) <= tol * scale


def _mixed_model():
    """ResNet / DenseNet / MobileNet motifs: conv+BN, conv-with-bias+BN, depthwise+BN, a residual
    add, a concat followed by BN (not foldable), Dense+BN (kept), dropouts, a BN on a conv that
    has a second consumer (not foldable)."""
    inp = keras.Input((20, 20, 3))
    x = L.Conv2D(8, 3, padding="same", use_bias=False, name="c1")(inp)
    x = L.BatchNormalization(name="c1_bn")(x)
    x = L.ReLU()(x)
    y = L.Conv2D(8, 3, padding="same", name="c2")(x)  # with bias
    y = L.BatchNormalization(epsilon=1e-5, name="c2_bn")(y)
    x = L.Add()([x, y])
    d = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", use_bias=False, name="dw")(x)
    d = L.BatchNormalization(name="dw_bn")(d)
    t = L.Conv2DTranspose(4, 2, strides=2, name="up")(x)
    t = L.BatchNormalization(name="up_bn")(t)
    t = L.MaxPooling2D(2)(t)
    s = L.SeparableConv2D(6, 3, padding="same", use_bias=False, name="sep")(x)
    s = L.BatchNormalization(name="sep_bn")(s)
    shared = L.Conv2D(4, 1, name="shared_out")(x)
    kept = L.BatchNormalization(name="shared_bn")(shared)  # the conv output is also used below
    c = L.Concatenate()([x, d, t, s, kept, shared])
    c = L.BatchNormalization(name="concat_bn")(c)  # DenseNet's pre-activation BN: kept
    c = L.SpatialDropout2D(0.3)(c)
    v = L.GlobalAveragePooling2D()(c)
    v = L.Dense(16, name="fc")(v)
    v = L.BatchNormalization(name="fc_bn")(v)  # after a Dense: kept
    v = L.Dropout(0.5)(v)
    out = L.Dense(5, name="head")(v)
    return keras.Model(inp, out, name="mixed")


def test_mixed_model_equal_outputs_and_folded():
    model = _mixed_model()
    _randomize_bn(model)
    attach_meta(model, {"arch": "mixed", "task": "classification", "labels": list("abcde")})
    fast = inference_model(model)
    x = np.random.default_rng(1).normal(size=(3, 20, 20, 3)).astype("float32")
    _assert_same(model(x, training=False), fast(x))
    names = {layer.name for layer in fast.layers}
    assert {"c1_bn", "c2_bn", "dw_bn", "up_bn", "sep_bn"}.isdisjoint(names)
    assert {"shared_bn", "concat_bn", "fc_bn"} <= names
    assert _count(fast, L.BatchNormalization) == 3
    assert _count(fast, L.Dropout) == 0 and _count(fast, L.SpatialDropout2D) == 0
    assert optimize_report(fast) == {"folded_bn": 5, "kept_bn": 3, "removed_dropout": 2, "fused_preprocessing": 0}
    assert get_meta(fast) == get_meta(model)
    # a copy: the original is untouched and the copy does not share its variables
    assert _count(model, L.BatchNormalization) == 8
    assert not {id(v) for v in fast.weights} & {id(v) for v in model.weights}


def _preprocessed(mode, padding, zero_pad=False):
    from zoo.models.common import Preprocess, preprocessing_config

    inp = keras.Input((12, 12, 3))
    x = Preprocess(**preprocessing_config(mode, default="unit"), name="pre")(inp)
    if zero_pad:
        x = L.ZeroPadding2D(1)(x)
    x = L.Conv2D(6, 3, padding=padding, use_bias=False, name="conv1")(x)
    x = L.BatchNormalization(name="conv1_bn")(x)
    return keras.Model(inp, L.ReLU()(x))


@pytest.mark.parametrize("mode", ["caffe", "torch", "tf"])
def test_preprocessing_fused_into_valid_conv(mode):
    model = _preprocessed(mode, "valid")
    _randomize_bn(model)
    fast = inference_model(model)
    x = np.random.default_rng(2).uniform(0, 255, size=(2, 12, 12, 3)).astype("float32")
    _assert_same(model(x), fast(x))
    assert "pre" not in {layer.name for layer in fast.layers}
    assert optimize_report(fast)["fused_preprocessing"] == 1 and optimize_report(fast)["folded_bn"] == 1


@pytest.mark.parametrize("padding, zero_pad", [("same", False), ("valid", True)])
def test_preprocessing_kept_where_padding_would_differ(padding, zero_pad):
    model = _preprocessed("torch", padding, zero_pad)
    _randomize_bn(model)
    fast = inference_model(model)
    x = np.random.default_rng(3).uniform(0, 255, size=(2, 12, 12, 3)).astype("float32")
    _assert_same(model(x), fast(x))
    assert "pre" in {layer.name for layer in fast.layers}
    assert optimize_report(fast)["fused_preprocessing"] == 0


def test_nested_model_dict_outputs_and_save(tmp_path):
    inner_in = keras.Input((16, 16, 3))
    h = L.Conv2D(4, 3, padding="same", use_bias=False, name="in_conv")(inner_in)
    h = L.BatchNormalization(name="in_bn")(h)
    inner = keras.Model(inner_in, L.ReLU()(h), name="backbone")
    inp = keras.Input((16, 16, 3))
    f = inner(inp)
    out = {"s1": f, "s2": L.MaxPooling2D(2)(L.Dropout(0.2)(f))}
    model = keras.Model(inp, out)
    _randomize_bn(model)
    fast = inference_model(model)
    x = np.random.default_rng(4).normal(size=(2, 16, 16, 3)).astype("float32")
    ref, got = model(x), fast(x)
    assert set(got) == {"s1", "s2"}
    _assert_same(ref, got)
    assert _count(fast, L.BatchNormalization) == 0
    from zoo.modeldir import load_model, save_model

    reloaded = load_model(save_model(fast, tmp_path / "fast.keras"))
    _assert_same(ref, reloaded(x))


def test_sequential_and_subclassed():
    seq = keras.Sequential([keras.Input((8, 8, 2)), L.Conv2D(3, 3), L.BatchNormalization(), L.Flatten(),
                            L.Dropout(0.1), L.Dense(2)])
    _randomize_bn(seq)
    fast = inference_model(seq)
    x = np.random.default_rng(5).normal(size=(2, 8, 8, 2)).astype("float32")
    _assert_same(seq(x), fast(x))
    assert _count(fast, L.BatchNormalization) == 0
    inp = keras.Input((8, 8, 2))
    outer = keras.Model(inp, L.Dense(3)(seq(inp)))  # a Sequential nested in a functional model
    fast = inference_model(outer)
    _assert_same(outer(x), fast(x))
    assert _count(fast, L.BatchNormalization) == 0 and _count(fast, L.Dropout) == 0

    class Sub(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(UsageError, match="functional"):
        inference_model(Sub())


# DenseNet's motifs (conv+BN inside a layer, concat -> BN kept) are in _mixed_model: building the
# 430-layer densenet121 twice would cost a minute of CI for nothing more.
@pytest.mark.parametrize("name", ["resnet18", "vgg11_bn"])
def test_zoo_builders(name):
    model = zoo.build(name, input_shape=(32, 32, 3), include_top=False, pooling="avg")
    _randomize_bn(model)
    fast = inference_model(model)
    x = np.random.default_rng(6).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
    _assert_same(model(x, training=False), fast(x))
    report = optimize_report(fast)
    assert report["folded_bn"] > 0
    assert _count(fast, L.BatchNormalization) == report["kept_bn"]
    assert report["kept_bn"] == 0  # every BN of these follows a convolution
    assert get_meta(fast) == get_meta(model) and get_meta(fast)["arch"] == name
