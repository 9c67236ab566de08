"""Show and Tell: a CNN encoder and an LSTM decoder that writes a caption word by word.

Vinyals, Toshev, Bengio & Erhan 2015, Show and Tell: A Neural Image Caption Generator
(arXiv 1411.4555). The image's pooled CNN features are projected to the word-embedding size and
fed to the LSTM as its first input (step -1); then the start token and the caption's words follow
(teacher forcing) and a softmax over the vocabulary predicts the next word at every step.

The model is two nested sub-models so training and decoding can use them apart:
    encoder  image -> pooled features        (any zoo backbone, frozen by default; run once per
                                              image and cached while training the decoder)
    decoder  [features, tokens] -> logits    (tokens = <start> w1 .. wn, targets w1 .. wn <end>)
    full     [image, tokens] -> logits       (what model.keras holds)
`encoder_model(model)` (image -> initial LSTM state) and `step_model(model)` ([token, h, c] ->
[log-probabilities, h, c]) rebuild the decoding graph from any built or loaded model's layers.
Token id 0 is padding (left out of the loss); the captioning task builds the vocabulary.
The encoder's backbone is any zoo classification model: zoo.registry builds it (`backbone_request`)
and passes its feature model to `build`; "tiny" is built here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal

import keras

from zoo.errors import UsageError
from zoo.models.common import check_dropout
from zoo.models.spec import BackboneRequest, PretrainedSpec, registry_build

PAPER = "Vinyals et al. 2015, Show and Tell: A Neural Image Caption Generator (arXiv 1411.4555)"
TINY = "tiny"  # a small conv encoder of this module, for tests and synthetic data
FEATURES = ("s4", "s8", "s16", "s32")


@dataclass(frozen=True)
class ShowAndTellConfig:
    backbone: str = "resnet50"  # a zoo classification model name, or "tiny" (a 5-conv encoder)
    backbone_weights: str | None = None  # weights tag/path of the backbone; None = random init
    train_backbone: bool = False  # False: the encoder is frozen (BN in inference mode), features cacheable
    feature: Literal["s4", "s8", "s16", "s32"] = "s32"  # which feature map of the backbone is pooled
    # how the feature map becomes one vector; "flatten" keeps where things are (small maps only)
    pooling: Literal["avg", "max", "flatten"] = "avg"
    vocab_size: int = 10_000  # softmax size, including padding (0) and unknown (1)
    embed_dim: int = 512  # word and image embedding size
    units: int = 512  # LSTM units
    dropout: float = 0.5  # on the LSTM inputs and outputs (the paper's regulariser)
    tiny_width: int = 32  # filters of the first conv of the tiny encoder (doubling per stage)


VARIANTS: dict[str, ShowAndTellConfig] = {
    "show_and_tell": ShowAndTellConfig(),
}


def _check(config: ShowAndTellConfig) -> None:
    if config.vocab_size < 5:
        raise UsageError(f"`vocab_size` must be at least 5 (padding, unknown, start, end and one word). "
                         f"Received: vocab_size={config.vocab_size}.")
    for key in ("embed_dim", "units", "tiny_width"):
        if int(getattr(config, key)) < 1:
            raise UsageError(f"`{key}` must be a positive integer. Received: {key}={getattr(config, key)!r}.")
    check_dropout(config.dropout)
    if config.feature not in FEATURES:
        raise UsageError(f"`feature` must be one of {', '.join(map(repr, FEATURES))}. Received: feature={config.feature!r}.")
    if config.pooling not in ("avg", "max", "flatten"):
        raise UsageError(f"`pooling` must be 'avg', 'max' or 'flatten'. Received: pooling={config.pooling!r}.")


def make_config(variant: str = "show_and_tell", **options: Any) -> ShowAndTellConfig:
    """The variant's config with `options` replacing fields; unknown options are an error."""
    if variant not in VARIANTS:
        raise UsageError(f"Unknown show_and_tell variant {variant!r}. Known: {', '.join(VARIANTS)}.")
    names = {f.name for f in fields(ShowAndTellConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise UsageError(f"Unknown show_and_tell option(s) {', '.join(unknown)}. Known: {', '.join(sorted(names))}.")
    config = replace(VARIANTS[variant], **options)
    _check(config)
    return config


def _tiny_backbone(input_shape, *, width: int, include_preprocessing: bool):
    """Five stride-2 conv stages (s2..s32): enough for synthetic scenes, fast on a CPU."""
    from keras import layers

    image = keras.Input(input_shape, name="image")
    x = layers.Rescaling(1 / 255.0, name="tiny_rescale")(image) if include_preprocessing else image
    outputs = {}
    for stage in range(5):
        filters = width * 2 ** min(stage, 3)
        x = layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False, name=f"tiny{stage + 1}_conv")(x)
        x = layers.BatchNormalization(name=f"tiny{stage + 1}_bn")(x)
        x = layers.ReLU(name=f"tiny{stage + 1}_relu")(x)
        if stage >= 1:
            outputs[f"s{2 ** (stage + 1)}"] = x
    return keras.Model(image, outputs, name="tiny_backbone")


def _backbone(config: ShowAndTellConfig, input_shape, include_preprocessing: bool, backbone_model):
    if config.backbone == TINY:
        return _tiny_backbone(input_shape, width=config.tiny_width, include_preprocessing=include_preprocessing)
    if backbone_model is None:
        raise UsageError(f"show_and_tell with backbone={config.backbone!r} needs that backbone's feature model "
                         f"(backbone_model=...). Build it with zoo.build('show_and_tell', backbone={config.backbone!r}) "
                         f"or zoo.models.ShowAndTell(), which compose the two.")
    return backbone_model


def build_encoder(config: ShowAndTellConfig, *, input_shape, include_preprocessing: bool = True,
                  preprocessing=None, backbone_model=None):
    """image [0, 255] -> pooled features of the chosen feature map (a model named "encoder").

    `backbone_model`: the feature model of `config.backbone` (unless "tiny"), which carries the
    preprocessing of its weights (or its family's default), so `preprocessing` is not used.
    """
    from keras import layers

    del preprocessing
    backbone = _backbone(config, input_shape, include_preprocessing, backbone_model)
    if config.feature not in backbone.output:
        raise UsageError(f"Backbone {config.backbone!r} has no feature map {config.feature!r}; it has "
                         f"{', '.join(sorted(backbone.output))}. Pass one of those as `feature`.")
    backbone.trainable = bool(config.train_backbone)
    image = keras.Input(tuple(input_shape), name="image")
    fmap = backbone(image)[config.feature]
    pool = {"avg": layers.GlobalAveragePooling2D, "max": layers.GlobalMaxPooling2D, "flatten": layers.Flatten}
    features = pool[config.pooling](name="encoder_pool")(fmap)
    return keras.Model(image, features, name="encoder")


def build_decoder(config: ShowAndTellConfig, *, feature_dim: int, caption_length: int | None = None):
    """[features, tokens] -> next-word logits at every token position (a model named "decoder")."""
    from keras import layers

    features = keras.Input((feature_dim,), name="features")
    tokens = keras.Input((caption_length,), dtype="int32", name="tokens")
    lstm = layers.LSTM(config.units, return_sequences=True, return_state=True, name="lstm")
    image_emb = layers.Dense(config.embed_dim, name="image_embedding")(features)
    image_emb = layers.Reshape((1, config.embed_dim), name="image_step")(image_emb)
    # Step -1: the image is the LSTM's first input; only its state carries on.
    _, h, c = lstm(layers.Dropout(config.dropout, name="image_dropout")(image_emb))
    # No mask_zero: the LSTM is causal, so padding after <end> cannot change earlier steps, and
    # the loss ignores padded targets (ignore_class=0). Unmasked, the output carries no Keras mask
    # that would silently reweight losses and metrics.
    words = layers.Embedding(config.vocab_size, config.embed_dim, name="word_embedding")(tokens)
    words = layers.Dropout(config.dropout, name="word_dropout")(words)
    x, _, _ = lstm(words, initial_state=[h, c])
    x = layers.Dropout(config.dropout, name="lstm_dropout")(x)
    # float32 logits: a softmax in float16 overflows under mixed precision.
    logits = layers.Dense(config.vocab_size, dtype="float32", name="logits")(x)
    return keras.Model([features, tokens], logits, name="decoder")


def _check_input_shape(input_shape) -> tuple[int, int, int]:
    input_shape = tuple(int(d) for d in input_shape)
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise UsageError(f"`input_shape` must be (height, width, channels). Received: input_shape={input_shape!r}.")
    return input_shape


def build_from_config(config: ShowAndTellConfig, *, input_shape=(224, 224, 3), include_preprocessing: bool = True,
                      preprocessing=None, caption_length: int | None = None, name: str = "show_and_tell",
                      backbone_model=None):
    """The full captioner [image, tokens] -> logits, holding the "encoder" and "decoder" sub-models.

    caption_length fixes the token input's length (None: any length); a fixed length gives the
    static shapes zoo.macs.count_macs needs. `backbone_model` is the feature model of
    `config.backbone` at `input_shape` (not needed for "tiny"); zoo.build("show_and_tell", ...)
    builds it.
    """
    _check(config)
    input_shape = _check_input_shape(input_shape)
    encoder = build_encoder(config, input_shape=input_shape, include_preprocessing=include_preprocessing,
                            preprocessing=preprocessing, backbone_model=backbone_model)
    decoder = build_decoder(config, feature_dim=int(encoder.output.shape[-1]), caption_length=caption_length)
    image = keras.Input(input_shape, name="image")
    tokens = keras.Input((caption_length,), dtype="int32", name="tokens")
    logits = decoder([encoder(image), tokens])
    return keras.Model([image, tokens], logits, name=name)


def _build_config(variant: str, num_classes: int | None, options: dict[str, Any]) -> ShowAndTellConfig:
    if num_classes:
        options = {"vocab_size": int(num_classes), **options}
    return make_config(variant, **options)


def backbone_request(variant: str = "show_and_tell", *, num_classes: int | None = None, input_shape=None,
                     include_top: bool = True, include_preprocessing: bool = True, preprocessing=None,
                     classifier_activation: str | None = None, caption_length: int | None = None,
                     **options: Any) -> BackboneRequest | None:
    """The backbone zoo.registry builds for `build` (same arguments); None for the "tiny" encoder."""
    config = _build_config(variant, num_classes, options)
    if config.backbone == TINY:
        return None
    return BackboneRequest(config.backbone, config.backbone_weights, _check_input_shape(input_shape or (224, 224, 3)))


def build(variant: str = "show_and_tell", *, num_classes: int | None = None, input_shape=None,
          include_top: bool = True, include_preprocessing: bool = True, preprocessing=None,
          classifier_activation: str | None = None, caption_length: int | None = None, backbone_model=None,
          **options: Any):
    """The registry entry point. `num_classes` > 0 is the vocabulary size (the softmax's classes).

    `include_top` and `classifier_activation` do not apply: the model's output is per-step logits.
    `backbone_model` is the feature model zoo.registry built for `backbone` (see `backbone_request`).
    """
    del include_top, classifier_activation
    config = _build_config(variant, num_classes, options)
    return build_from_config(config, input_shape=input_shape or (224, 224, 3), caption_length=caption_length,
                             include_preprocessing=include_preprocessing, preprocessing=preprocessing,
                             backbone_model=backbone_model)


# The captioner is trained by `zoo finetune`; its backbone's weights load through the backbone's family.
PRETRAINED = PretrainedSpec()


def ShowAndTell(*, weights: str | None = "imagenet", backbone: str = "resnet50", vocab_size: int = 10_000,
                input_shape=(224, 224, 3), include_preprocessing: bool = True, **options: Any):
    """Show and Tell (Vinyals et al. 2015) with a pretrained, frozen backbone.

    Args:
        weights: the backbone's weights (a tag such as "imagenet", a path, or None for random).
        backbone: a zoo classification model name, or "tiny".
        vocab_size: size of the softmax over words (padding and unknown included).
        input_shape: image (H, W, C); the model takes pixels in [0, 255].
        **options: other ShowAndTellConfig fields (embed_dim, units, dropout, train_backbone, ...).
    Returns:
        keras.Model [image, tokens] -> logits (batch, steps, vocab_size).
    """
    # Through zoo.build, which builds the backbone the captioner stands on.
    return registry_build("show_and_tell", input_shape=input_shape, include_preprocessing=include_preprocessing,
                          backbone=backbone, backbone_weights=weights, vocab_size=vocab_size, **options)


def encoder_model(model):
    """image -> [h0, c0]: the LSTM state after it has seen the image (decoding starts from here)."""

    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    image = keras.Input(tuple(encoder.inputs[0].shape[1:]), name="image")
    x = decoder.get_layer("image_embedding")(encoder(image))
    x = decoder.get_layer("image_step")(x)
    _, h, c = decoder.get_layer("lstm")(x)
    return keras.Model(image, [h, c], name="caption_encoder")


def features_to_state_model(model):
    """pooled features -> [h0, c0], for decoding from cached features."""

    decoder = model.get_layer("decoder")
    features = keras.Input(tuple(decoder.input[0].shape[1:]), name="features")
    x = decoder.get_layer("image_step")(decoder.get_layer("image_embedding")(features))
    _, h, c = decoder.get_layer("lstm")(x)
    return keras.Model(features, [h, c], name="caption_features_to_state")


def step_model(model):
    """[token (batch, 1), h, c] -> [log-probabilities (batch, vocab), h, c]: one decoding step."""

    decoder = model.get_layer("decoder")
    units = int(decoder.get_layer("lstm").units)
    token = keras.Input((1,), dtype="int32", name="token")
    h_in = keras.Input((units,), name="h")
    c_in = keras.Input((units,), name="c")
    x = decoder.get_layer("word_embedding")(token)
    x, h, c = decoder.get_layer("lstm")(x, initial_state=[h_in, c_in])
    logits = decoder.get_layer("logits")(x)
    # Built fresh for decoding and never saved, so a plain op (no layer) takes the single step.
    logp = keras.layers.Activation("log_softmax", name="log_softmax")(logits)[:, 0]
    return keras.Model([token, h_in, c_in], [logp, h, c], name="caption_step")


@keras.saving.register_keras_serializable(package="zoo")
def token_accuracy(y_true, y_pred):
    """Per caption: the share of non-padding target tokens (id != 0) whose argmax is right.

    Registered here (not in zoo.tasks) because a model saved after `compile` names it in its
    compile config, and loading must find it through zoo.models.custom_objects().
    """
    from keras import ops

    y_true = ops.cast(y_true, "int32")
    hit = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true), "float32")
    valid = ops.cast(ops.not_equal(y_true, 0), "float32")
    return ops.sum(hit * valid, axis=-1) / ops.maximum(ops.sum(valid, axis=-1), 1.0)


CUSTOM_OBJECTS: dict[str, Any] = {"zoo>token_accuracy": token_accuracy}
