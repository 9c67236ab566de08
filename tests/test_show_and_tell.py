"""Show and Tell architecture: shapes, frozen encoder, decoding graph = training graph, padding,
safe-mode save/load, registry numbers, errors."""

import math

import numpy as np
import pytest
from helpers import TINY_CAPTIONER, caption_inputs, tiny_captioner

from zoo.errors import UsageError

TINY = dict(TINY_CAPTIONER)


def tiny_model(**kw):
    return tiny_captioner("show_and_tell", **{**TINY, **kw})


inputs = caption_inputs


def test_build_shapes_metadata_and_frozen_encoder():
    from zoo.modeldir import get_meta

    model = tiny_model()
    images, tokens = inputs()
    logits = model([images, tokens], training=False)
    assert tuple(logits.shape) == (3, 6, 20)
    assert "float32" in str(logits.dtype)
    assert get_meta(model)["task"] == "captioning"
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    assert not encoder.trainable_weights and encoder.non_trainable_weights
    assert len(model.trainable_weights) == len(decoder.trainable_weights) > 0
    assert tiny_model(train_backbone=True).get_layer("encoder").trainable_weights


def test_step_by_step_decoding_equals_teacher_forcing():
    """The decoding graph (encoder state + one step at a time) computes what training computes."""
    import keras

    from zoo.models.show_and_tell import encoder_model, features_to_state_model, step_model

    model = tiny_model()
    images, tokens = inputs()
    full = keras.ops.convert_to_numpy(keras.ops.log_softmax(model([images, tokens], training=False), axis=-1))
    h, c = (np.asarray(t) for t in encoder_model(model)(images))
    feats = np.asarray(model.get_layer("encoder")(images))
    h2, c2 = (np.asarray(t) for t in features_to_state_model(model)(feats))
    np.testing.assert_allclose(h, h2, atol=1e-6)
    step = step_model(model)
    for t in range(tokens.shape[1]):
        logp, h, c = (np.asarray(x) for x in step([tokens[:, t : t + 1], h, c]))
        np.testing.assert_allclose(logp, full[:, t], atol=1e-5)


def test_padding_after_the_caption_does_not_change_earlier_steps():
    model = tiny_model()
    images, tokens = inputs()
    padded = tokens.copy()
    padded[:, 4:] = 0
    a = np.asarray(model([images, tokens], training=False))
    b = np.asarray(model([images, padded], training=False))
    np.testing.assert_allclose(a[:, :4], b[:, :4], atol=1e-6)


def test_loss_ignores_padding():
    import keras

    from zoo.tasks.captioning.train import caption_loss

    rng = np.random.default_rng(1)
    y_true = np.array([[5, 6, 3, 0, 0], [7, 3, 0, 0, 0]], "int32")
    logits = rng.normal(size=(2, 5, 20)).astype("float32")
    loss = float(caption_loss()(y_true, logits))
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    valid = y_true != 0
    expected = -np.take_along_axis(logp, y_true[..., None], -1)[..., 0][valid].mean()
    assert loss == pytest.approx(expected, rel=1e-5)
    changed = logits.copy()
    changed[~valid] = rng.normal(size=changed[~valid].shape) * 50  # garbage where targets are padding
    assert float(caption_loss()(y_true, changed)) == pytest.approx(loss, rel=1e-6)
    del keras


def test_token_accuracy_counts_only_real_tokens():
    from zoo.models.show_and_tell import token_accuracy

    y_true = np.array([[5, 6, 0, 0]], "int32")
    logits = np.zeros((1, 4, 8), "float32")
    logits[0, 0, 5] = logits[0, 1, 1] = 1.0  # first right, second wrong, pads predict 0 (would be "right")
    logits[0, 2:, 0] = 1.0
    assert float(np.asarray(token_accuracy(y_true, logits))[0]) == pytest.approx(0.5)


def test_safe_mode_round_trip(tmp_path):
    import zoo
    from zoo.modeldir import save_model

    model = tiny_model()
    images, tokens = inputs()
    save_model(model, tmp_path / "m.keras")
    loaded = zoo.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(loaded([images, tokens])), np.asarray(model([images, tokens])), atol=1e-6)


def test_registry_row_holds_to_the_default_model():
    import zoo
    from zoo.macs import count_macs
    from zoo.registry import get_spec

    spec = get_spec("show_and_tell")
    model = zoo.build("show_and_tell", caption_length=20)
    assert model.count_params() == spec.params
    assert count_macs(model) == spec.macs
    decoder = model.get_layer("decoder")
    # embedding 10000x512, image projection 2048->512, LSTM 512/512, softmax 512->10000
    assert sum(math.prod(w.shape) for w in decoder.weights) == (
        10_000 * 512 + 2048 * 512 + 512 + 4 * 512 * (512 + 512 + 1) + 512 * 10_000 + 10_000)


def test_any_zoo_backbone_and_keras_style_builder():
    from zoo.models import ShowAndTell

    model = ShowAndTell(weights=None, backbone="resnet18", vocab_size=30, input_shape=(64, 64, 3), embed_dim=8, units=8)
    assert model.get_layer("encoder").output.shape[-1] == 512
    images = np.zeros((1, 64, 64, 3), "float32")
    assert tuple(model([images, np.array([[2, 5]], "int32")]).shape) == (1, 2, 30)


@pytest.mark.parametrize("options,match", [
    ({"colour": "red"}, "Unknown show_and_tell option"),
    ({"dropout": 1.5}, "dropout"),
    ({"vocab_size": 3}, "vocab_size"),
    ({"pooling": "mean"}, "pooling"),
])
def test_option_errors(options, match):
    import zoo

    with pytest.raises(UsageError, match=match):
        zoo.build("show_and_tell", input_shape=(32, 32, 3), backbone="tiny", **options)
