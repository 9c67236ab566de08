"""Show, Attend and Tell architecture: shapes, attention weights, decoding graph = training graph,
the doubly stochastic regulariser, the gate, padding, safe-mode save/load, registry numbers, errors."""

import math

import numpy as np
import pytest
from helpers import TINY_CAPTIONER, caption_inputs, tiny_captioner

from zoo.errors import UsageError

TINY = dict(TINY_CAPTIONER, attention_dim=8)


def tiny_model(**kw):
    return tiny_captioner("show_attend_tell", **{**TINY, **kw})


inputs = caption_inputs


def attention_of(model, images, tokens):
    """alpha (batch, steps, cells) of the training graph, read from the recurrence's output."""
    import keras

    decoder = model.get_layer("decoder")
    probe = keras.Model(decoder.inputs, decoder.get_layer("attention_lstm").output[2])
    return np.asarray(probe([np.asarray(model.get_layer("encoder")(images)), tokens], training=False))


def test_build_shapes_metadata_grid_and_frozen_encoder():
    from zoo.modeldir import get_meta
    from zoo.models.show_attend_tell import attention_grid

    model = tiny_model()
    images, tokens = inputs()
    logits = model([images, tokens], training=False)
    assert tuple(logits.shape) == (3, 6, 20) and "float32" in str(logits.dtype)
    assert get_meta(model)["task"] == "captioning" and get_meta(model)["arch"] == "show_attend_tell"
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    assert tuple(encoder.output.shape[1:]) == (2, 2, 32)  # s16 of 32 px; the s32 stage is left out
    assert not any(layer.name.startswith("tiny5") for layer in encoder.layers)
    assert attention_grid(model) == (2, 2)
    assert not encoder.trainable_weights and encoder.non_trainable_weights
    assert len(model.trainable_weights) == len(decoder.trainable_weights) > 0
    assert tiny_model(train_backbone=True).get_layer("encoder").trainable_weights
    assert tiny_model(feature="s8").get_layer("encoder").output.shape[1:3] == (4, 4)


def test_attention_is_a_distribution_over_the_grid_that_depends_on_the_image():
    model = tiny_model()
    images, tokens = inputs()
    alpha = attention_of(model, images, tokens)
    assert alpha.shape == (3, 6, 4)
    np.testing.assert_allclose(alpha.sum(-1), 1.0, atol=1e-5)
    assert (alpha >= 0).all()
    other = attention_of(model, images[::-1].copy(), tokens)
    assert np.abs(other - alpha).max() > 1e-4  # the weights come from the image, not a constant


def test_step_by_step_decoding_equals_teacher_forcing():
    """The decoding graph (initial state + one step at a time, annotations carried as state)
    computes the training graph's log-probabilities and attention."""
    import keras

    from zoo.models.show_attend_tell import encoder_model, features_to_state_model, step_model

    model = tiny_model()
    images, tokens = inputs()
    full = keras.ops.convert_to_numpy(keras.ops.log_softmax(model([images, tokens], training=False), axis=-1))
    alpha = attention_of(model, images, tokens)
    state = [np.asarray(t) for t in encoder_model(model)(images)]
    cached = [np.asarray(t) for t in features_to_state_model(model)(np.asarray(model.get_layer("encoder")(images)))]
    for a, b in zip(state, cached):
        np.testing.assert_allclose(a, b, atol=1e-6)
    h, c, annotations, projected = state
    assert annotations.shape == (3, 4, 32) and projected.shape == (3, 4, 8)
    step = step_model(model)
    for t in range(tokens.shape[1]):
        logp, h, c, weights = (np.asarray(x) for x in step([tokens[:, t : t + 1], h, c, annotations, projected]))
        np.testing.assert_allclose(logp, full[:, t], atol=1e-5)
        np.testing.assert_allclose(weights, alpha[:, t], atol=1e-6)


def test_doubly_stochastic_regulariser_is_the_papers_penalty_over_real_steps():
    model = tiny_model(attention_reg=0.7)
    images, tokens = inputs()
    tokens[1, 4:] = 0  # a shorter caption: its padded steps do not count
    model([images, tokens], training=False)
    (penalty,) = [float(x) for x in model.losses]
    alpha = attention_of(model, images, tokens) * (tokens != 0)[..., None]
    assert penalty == pytest.approx(0.7 * np.mean((1.0 - alpha.sum(1)) ** 2), rel=1e-5)
    assert penalty > 0
    off = tiny_model(attention_reg=0.0)
    off([images, tokens], training=False)
    assert off.losses == []


def test_training_minimises_the_caption_loss_plus_the_regulariser():
    """One fit step: Keras adds the penalty to the compiled loss (what `zoo finetune` trains on)."""
    import keras

    from zoo.tasks.captioning.train import caption_loss

    model = tiny_model(dropout=0.0)
    images, tokens = inputs(n=4, steps=5)
    targets = np.concatenate([tokens[:, 1:], np.full((4, 1), 3, "int32")], axis=1)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=caption_loss())
    reported = model.evaluate([images, tokens], targets, verbose=0)
    ce = float(caption_loss()(targets, model([images, tokens], training=False)))
    assert reported == pytest.approx(ce + float(model.losses[0]), rel=1e-4)


def test_the_gate_scales_the_context():
    import keras

    model = tiny_model()
    gate = model.get_layer("decoder").get_layer("attention_lstm").beta
    assert gate is not None and gate.activation is keras.activations.sigmoid
    assert tiny_model(gate=False).get_layer("decoder").get_layer("attention_lstm").beta is None
    images, tokens = inputs()
    kernel, bias = gate.get_weights()
    gate.set_weights([np.zeros_like(kernel), np.full_like(bias, -30.0)])  # beta ~ 0: no context reaches the LSTM
    decoder = model.get_layer("decoder")
    probe = keras.Model(decoder.inputs, decoder.get_layer("attention_lstm").output[1])
    z = np.asarray(probe([np.asarray(model.get_layer("encoder")(images)), tokens]))
    assert np.abs(z).max() < 1e-9


def test_padding_after_the_caption_does_not_change_earlier_steps():
    model = tiny_model()
    images, tokens = inputs()
    padded = tokens.copy()
    padded[:, 4:] = 0
    a = np.asarray(model([images, tokens], training=False))
    b = np.asarray(model([images, padded], training=False))
    np.testing.assert_allclose(a[:, :4], b[:, :4], atol=1e-6)


def test_safe_mode_round_trip(tmp_path):
    import zoo
    from zoo.modeldir import save_model

    model = tiny_model()
    images, tokens = inputs()
    save_model(model, tmp_path / "m.keras")
    loaded = zoo.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(loaded([images, tokens])), np.asarray(model([images, tokens])), atol=1e-6)
    recurrence = loaded.get_layer("decoder").get_layer("attention_lstm")
    assert (recurrence.units, recurrence.attention_dim, recurrence.gate, recurrence.attention_reg) == (16, 8, True, 1.0)


def test_registry_row_holds_to_the_default_model():
    import zoo
    from zoo.macs import count_macs
    from zoo.registry import get_spec

    spec = get_spec("show_attend_tell")
    model = zoo.build("show_attend_tell", caption_length=20)
    assert model.count_params() == spec.params
    assert count_macs(model) == spec.macs
    assert tuple(model.get_layer("encoder").output.shape[1:]) == (14, 14, 1024)  # resnet50 at s16, the paper's grid
    decoder = model.get_layer("decoder")
    d, u, a, e, v = 1024, 512, 512, 512, 10_000
    assert sum(math.prod(w.shape) for w in decoder.weights) == (
        v * e  # word embedding
        + 2 * (d * u + u)  # init_h, init_c
        + d * a + a  # W_a (attention_features)
        + 4 * u * (e + d + u) + 4 * u  # LSTM over [word, context]
        + u * a + a + 1 + u + 1  # W_h, v, beta
        + (u * e + e) + (d * e + e)  # L_h, L_z
        + e * v + v)  # L_o
    attention = decoder.get_layer("attention_lstm").macs_per_sample([(20, e), (196, d)])
    assert attention == 20 * (u * a + 196 * a + 196 * d + u + 4 * (e + d + u) * u)


def test_any_zoo_backbone_and_keras_style_builder():
    from zoo.models import ShowAttendTell

    model = ShowAttendTell(weights=None, backbone="resnet18", vocab_size=30, input_shape=(64, 64, 3), embed_dim=8,
                           units=8, attention_dim=8)
    assert tuple(model.get_layer("encoder").output.shape[1:]) == (4, 4, 256)  # s16 of resnet18
    s32 = ShowAttendTell(weights=None, backbone="resnet18", vocab_size=30, input_shape=(64, 64, 3), embed_dim=8,
                         units=8, attention_dim=8, feature="s32")
    assert tuple(s32.get_layer("encoder").output.shape[1:]) == (2, 2, 512)
    images = np.zeros((1, 64, 64, 3), "float32")
    assert tuple(model([images, np.array([[2, 5]], "int32")]).shape) == (1, 2, 30)
    # Decoding (what zoo predict and finetune's validation metrics run) on a registry backbone, whose
    # feature model has a list of one input: it once failed here and only the tiny backbone was tested.
    from zoo.tasks.captioning.predict import generate

    vocab = ["", "[UNK]", "<start>", "<end>"] + [f"w{i}" for i in range(26)]
    for captioner in (model, s32):
        [out] = generate(captioner, images, vocab=vocab, beam_size=2, max_length=4)
        grid = captioner.get_layer("encoder").output.shape[1:3]
        assert isinstance(out["caption"], str) and out["attention"].shape[1:] == tuple(grid)


@pytest.mark.parametrize("options,match", [
    ({"colour": "red"}, "show_attend_tell has no option 'colour'"),
    ({"pooling": "avg"}, "show_attend_tell has no option 'pooling'"),
    ({"dropout": 1.5}, "dropout"),
    ({"vocab_size": 3}, "vocab_size"),
    ({"attention_reg": -1.0}, "attention_reg"),
    ({"attention_dim": 0}, "attention_dim"),
    ({"feature": "s64"}, "`feature` of show_attend_tell must be one of"),
])
def test_option_errors(options, match):
    import zoo

    with pytest.raises(UsageError, match=match):
        zoo.build("show_attend_tell", input_shape=(32, 32, 3), backbone="tiny", **options)
