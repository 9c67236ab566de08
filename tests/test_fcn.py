"""FCN-32s/16s/8s: bilinear upsampling, alignment with odd input sizes, VGG classifier as convs, size."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.errors import UsageError


def _resize_zero_extended(x: np.ndarray, factor: int) -> np.ndarray:
    """Half-pixel bilinear upsampling (tf.image.resize) of x extended by one zero pixel on each side,
    cropped back: what a Caffe/FCN deconvolution computes, borders included."""
    import tensorflow as tf

    n, h, w, c = x.shape
    padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
    big = tf.image.resize(padded, ((h + 2) * factor, (w + 2) * factor), method="bilinear").numpy()
    return big[:, factor:factor + h * factor, factor:factor + w * factor]


@pytest.mark.parametrize("factor", [2, 8, 32])
def test_bilinear_init_equals_bilinear_resize(factor):
    import keras
    import tensorflow as tf

    from zoo.models.fcn import BilinearUpsampling, CropTo

    rng = np.random.default_rng(factor)
    x = rng.normal(size=(2, 3, 5, 4)).astype("float32")
    layer = keras.layers.Conv2DTranspose(4, 2 * factor, strides=factor, use_bias=False,
                                         kernel_initializer=BilinearUpsampling())
    ref_shape = np.zeros((2, 3 * factor, 5 * factor, 1), "float32")
    y = CropTo(factor // 2)([layer(x), ref_shape]).numpy()
    assert y.shape == (2, 3 * factor, 5 * factor, 4)
    np.testing.assert_allclose(y, _resize_zero_extended(x, factor), atol=1e-5)
    # Away from the borders it is plain tf.image.resize (half-pixel centres), no padding involved.
    plain = tf.image.resize(x, (3 * factor, 5 * factor), method="bilinear").numpy()
    m = factor // 2
    np.testing.assert_allclose(y[:, m:-m, m:-m], plain[:, m:-m, m:-m], atol=1e-5)
    # Channels are upsampled apart: the kernel is diagonal in (out, in).
    kernel = layer.kernel.numpy()
    assert np.all(kernel[:, :, 0, 1] == 0) and kernel[:, :, 2, 2].max() > 0


def test_bilinear_kernel_matches_reference_filter():
    from zoo.models.fcn import bilinear_kernel

    # FCN's upsample_filt(4): factor 2, centre 1.5 -> [0.25, 0.75, 0.75, 0.25] per axis.
    np.testing.assert_allclose(bilinear_kernel(4), np.outer([0.25, 0.75, 0.75, 0.25], [0.25, 0.75, 0.75, 0.25]))


def test_pad_to_multiple_keeps_pixels_in_place():
    from zoo.models.fcn import PadToMultiple

    x = np.arange(2 * 33 * 40 * 1, dtype="float32").reshape(2, 33, 40, 1) + 1
    y = PadToMultiple(32)(x).numpy()
    assert y.shape == (2, 64, 64, 1)
    np.testing.assert_array_equal(y[:, :33, :40], x)
    assert np.all(y[:, 33:] == 0) and np.all(y[:, :, 40:] == 0)


def test_fc_to_conv_equals_dense_on_flattened_map():
    import keras

    from zoo.models.fcn import fc_to_conv

    rng = np.random.default_rng(0)
    fmap = rng.normal(size=(3, 2, 3, 4)).astype("float32")
    kernel = rng.normal(size=(2 * 3 * 4, 5)).astype("float32")
    dense = fmap.reshape(3, -1) @ kernel  # Keras Flatten order: H, W, C
    conv = keras.ops.conv(fmap, fc_to_conv(kernel, grid=(2, 3)), padding="valid").numpy()
    np.testing.assert_allclose(conv[:, 0, 0], dense, rtol=1e-5, atol=1e-5)
    torch_flat = fmap.transpose(0, 3, 1, 2).reshape(3, -1) @ kernel  # torchvision flattens C, H, W
    conv = keras.ops.conv(fmap, fc_to_conv(kernel, grid=(2, 3), layout="chw"), padding="valid").numpy()
    np.testing.assert_allclose(conv[:, 0, 0], torch_flat, rtol=1e-5, atol=1e-5)
    with pytest.raises(UsageError, match="divisible"):
        fc_to_conv(kernel[:7], grid=(2, 3))


def _small(variant="fcn8s", **kw):
    import zoo

    return zoo.build(variant, num_classes=kw.pop("num_classes", 3), input_shape=kw.pop("input_shape", (None, None, 3)),
                     backbone="resnet18", head_channels=16, **kw)


@pytest.mark.parametrize("variant", ["fcn32s", "fcn16s", "fcn8s"])
def test_outputs_align_with_odd_input_sizes(variant):
    import keras

    model = _small(variant, classifier_activation=None)
    probe = keras.Model(model.inputs[0], [model.get_layer("score").output,
                                       model.get_layer(f"upscore{int(variant[3:-1])}").input])
    rng = np.random.default_rng(1)
    for h, w in ((37, 53), (1, 1), (65, 31)):
        x = rng.uniform(0, 255, size=(1, h, w, 3)).astype("float32")
        out, coarse = (t.numpy() if hasattr(t, "numpy") else t for t in probe(x))
        assert out.shape == (1, h, w, 3)
        f = int(variant[3:-1])
        # The output is the coarse score map upsampled on the half-pixel grid, cropped from the top-left.
        ref = _resize_zero_extended(np.asarray(coarse), f)[:, :h, :w]
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_skip_layers_follow_the_paper():
    model = _small("fcn8s")
    names = {layer.name for layer in model.layers}
    assert {"fc6", "fc7", "score_fr", "upscore2", "score_pool4", "fuse_pool4", "upscore_pool4", "score_pool3",
            "fuse_pool3", "upscore8", "score"} <= names
    assert model.get_layer("upscore2").trainable and not model.get_layer("upscore8").trainable
    assert not np.any(model.get_layer("score_pool3").kernel.numpy())  # new score layers start at zero
    m16 = _small("fcn16s")
    assert "score_pool3" not in {layer.name for layer in m16.layers}
    assert m16.output_shape == (None, None, None, 3)


def test_bad_options_raise_usage_errors():
    import zoo

    with pytest.raises(UsageError, match="output_stride"):
        zoo.build("fcn8s", output_stride=4)
    with pytest.raises(UsageError, match="include_top"):
        zoo.build("fcn8s", include_top=False)
    with pytest.raises(UsageError, match="classification model"):
        zoo.build("fcn8s", backbone="fcn32s")
    with pytest.raises(UsageError, match="input_shape"):
        zoo.build("fcn8s", input_shape=(64, 64))


@pytest.mark.slow
def test_fcn8s_vgg16_has_134m_parameters_and_fc6_fc7_from_the_classifier():
    import keras

    import zoo
    from zoo.models.fcn import load_vgg_classifier

    fcn = zoo.build("fcn8s", input_shape=(224, 224, 3))
    # VGG16 convs 14,714,688 + fc6 102,764,544 + fc7 16,781,312 + scores 102,207 + deconvs 127,008.
    assert fcn.count_params() == 134_489_759 == zoo.info("fcn8s")["params"]
    assert fcn.get_layer("fc6").kernel.shape == (7, 7, 512, 4096)
    vgg = zoo.build("vgg16", classifier_activation=None)
    load_vgg_classifier(fcn, vgg)
    backbone = [layer for layer in fcn.layers if isinstance(layer, keras.Model)][0]
    for src in backbone.layers:  # same conv weights, so pool5 matches
        if src.weights:
            vgg.get_layer(src.name).set_weights(src.get_weights())
    x = np.random.default_rng(0).uniform(0, 255, size=(1, 224, 224, 3)).astype("float32")
    # At the centre of the 7x7 pool5 map, fc6 (7x7, same padding) sees the whole map, as fc1 does.
    fc7 = keras.Model(fcn.inputs[0], fcn.get_layer("fc7").output)(x).numpy()[0, 3, 3]
    ref = keras.Model(vgg.inputs[0], vgg.get_layer("fc2").output)(x).numpy()[0]
    np.testing.assert_allclose(fc7, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())


def test_saved_model_loads_in_safe_mode_with_the_same_outputs(tmp_path):
    from zoo.modeldir import load_model, save_model

    model = _small("fcn16s")
    x = np.random.default_rng(2).uniform(0, 255, size=(2, 45, 39, 3)).astype("float32")
    path = save_model(model, tmp_path / "fcn.keras")
    loaded = load_model(path)  # PadToMultiple, CropTo and BilinearUpsampling come back by name
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)
    assert loaded.get_layer("upscore16").trainable is False
