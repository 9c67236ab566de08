"""Show, Attend and Tell: an LSTM captioner that looks at a different part of the image for every word.

Xu, Ba, Kiros, Cho, Courville, Salakhutdinov, Zemel & Bengio 2015, Show, Attend and Tell: Neural
Image Caption Generation with Visual Attention (arXiv 1502.03044); the soft, deterministic attention
of its section 4.2, as in the authors' reference code (arctic-captions):

    a_1 .. a_L   the backbone's feature map, L = rows x columns cells of D features (the annotations)
    h_0, c_0     tanh(W_init_h mean(a)), tanh(W_init_c mean(a))
    e_ti         v' tanh(W_a a_i + W_h h_t-1)                   the attention MLP
    alpha_t      softmax over i of e_t                           where the model looks for word t
    z_t          sigmoid(w_beta' h_t-1) * sum_i alpha_ti a_i     with the gating scalar beta (4.2.1)
    h_t, c_t     LSTM([E y_t-1, z_t], h_t-1, c_t-1)
    logits_t     L_o tanh(E y_t-1 + L_h h_t + L_z z_t)           the deep output layer (eq. 7)
    loss         cross-entropy + lambda * mean_i (1 - sum_t alpha_ti)^2
                 the doubly stochastic regulariser (eq. 14): every cell gets attention over the caption

Training is teacher forcing (tokens = <start> w1 .. wn, targets w1 .. wn <end>); padding (id 0)
steps neither predict nor count in the regulariser. The model is two nested sub-models, as Show
and Tell (zoo.models.show_and_tell) is, so the captioning task trains and decodes both alike:
    encoder  image -> feature map (rows, columns, D)   any zoo backbone at feature level s4..s32
    decoder  [feature map, tokens] -> logits           (what trains on cached features)
    full     [image, tokens] -> logits                 (what model.keras holds)
`encoder_model(model)` (image -> [h0, c0, annotations, projected annotations]) and `step_model(model)`
([token, h, c, annotations, projected] -> [log-probabilities, h, c, attention]) rebuild the decoding
graph from any built or loaded model's layers; the annotations ride along as per-row state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import keras

from zoo.errors import UsageError
from zoo.models.common import check_dropout, check_input_shape, make_options
from zoo.models.show_and_tell import TINY, _backbone, _check_input_shape
from zoo.models.spec import BackboneRequest, PretrainedSpec, registry_build

PAPER = ("Xu et al. 2015, Show, Attend and Tell: Neural Image Caption Generation with Visual Attention "
         "(arXiv 1502.03044)")


@dataclass(frozen=True)
class ShowAttendTellConfig:
    backbone: str = "resnet50"  # a zoo classification model name, or "tiny" (a 5-conv encoder)
    backbone_weights: str | None = None  # weights tag/path of the backbone; None = random init
    train_backbone: bool = False  # False: the encoder is frozen (BN in inference mode), features cacheable
    # which feature map is attended over; s16 is the paper's 14 x 14 grid at 224 px (VGG conv5_4)
    feature: Literal["s4", "s8", "s16", "s32"] = "s16"
    vocab_size: int = 10_000  # softmax size, including padding (0) and unknown (1)
    embed_dim: int = 512  # word embedding size (and of the deep output layer)
    units: int = 512  # LSTM units
    attention_dim: int = 512  # hidden size of the attention MLP
    dropout: float = 0.5  # on the word embeddings and before the softmax
    gate: bool = True  # the gating scalar beta on the attended context
    attention_reg: float = 1.0  # lambda of the doubly stochastic regulariser (0 turns it off)
    tiny_width: int = 32  # filters of the first conv of the tiny encoder (doubling per stage)


VARIANTS: dict[str, ShowAttendTellConfig] = {
    "show_attend_tell": ShowAttendTellConfig(),
}


def _check(config: ShowAttendTellConfig) -> None:
    if config.vocab_size < 5:
        raise UsageError(f"`vocab_size` must be at least 5 (padding, unknown, start, end and one word). "
                         f"Received: vocab_size={config.vocab_size}.")
    for key in ("embed_dim", "units", "attention_dim", "tiny_width"):
        if int(getattr(config, key)) < 1:
            raise UsageError(f"`{key}` must be a positive integer. Received: {key}={getattr(config, key)!r}.")
    check_dropout(config.dropout)
    if not config.attention_reg >= 0.0:
        raise UsageError(f"`attention_reg` must be >= 0. Received: attention_reg={config.attention_reg!r}.")


def make_config(variant: str = "show_attend_tell", **options: Any) -> ShowAttendTellConfig:
    """The variant's config with `options` replacing fields; unknown options and values are an error."""
    if variant not in VARIANTS:
        raise UsageError(f"Unknown show_attend_tell variant {variant!r}. Known: {', '.join(VARIANTS)}.")
    config = make_options(ShowAttendTellConfig, options, arch="show_attend_tell", base=VARIANTS[variant])
    _check(config)
    return config


@keras.saving.register_keras_serializable(package="zoo")
class AttentionLSTM(keras.layers.Layer):
    """The decoder's recurrence: at every step attend with h_t-1, gate, then one LSTM step.

    Inputs [words (B, T, E), annotations (B, L, D), projected W_a a (B, L, A), h0, c0 (B, units),
    tokens (B, T)]; outputs [h_t (B, T, units), z_t (B, T, D), alpha_t (B, T, L), h_T, c_T].
    The tokens only mark padding (id 0) for the doubly stochastic regulariser, added with add_loss.
    """

    def __init__(self, units: int, attention_dim: int, *, gate: bool = True, attention_reg: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.attention_dim = int(units), int(attention_dim)
        self.gate, self.attention_reg = bool(gate), float(attention_reg)
        self.cell = keras.layers.LSTMCell(self.units, name="lstm_cell")
        self.hidden = keras.layers.Dense(self.attention_dim, use_bias=False, name="attention_hidden")
        self.score = keras.layers.Dense(1, name="attention_score")
        self.beta = keras.layers.Dense(1, activation="sigmoid", name="gate") if self.gate else None

    def build(self, input_shape):
        words, annotations = input_shape[0], input_shape[1]
        self.cell.build((None, int(words[-1]) + int(annotations[-1])))
        self.hidden.build((None, self.units))
        self.score.build((None, None, self.attention_dim))
        if self.beta is not None:
            self.beta.build((None, self.units))

    def call(self, inputs):
        from keras import ops

        words, annotations, projected, h0, c0, tokens = inputs
        zeros_z = ops.zeros_like(annotations[:, 0, :])
        zeros_alpha = ops.zeros_like(projected[:, :, 0])

        def step(carry, word):
            h, c = carry[0], carry[1]
            energy = self.score(ops.tanh(projected + ops.expand_dims(self.hidden(h), 1)))[:, :, 0]
            alpha = ops.softmax(energy, axis=-1)
            z = ops.sum(ops.expand_dims(alpha, -1) * annotations, axis=1)
            if self.beta is not None:
                z = z * self.beta(h)
            _, (h, c) = self.cell(ops.concatenate([word, z], axis=-1), [h, c])
            # keras.ops.scan stacks outputs shaped like the carry, so the carry holds them too.
            return (h, c, z, alpha), (h, c, z, alpha)

        _, (hs, cs, zs, alphas) = ops.scan(step, (h0, c0, zeros_z, zeros_alpha), ops.transpose(words, (1, 0, 2)))
        if self.attention_reg > 0:
            mask = ops.cast(ops.not_equal(ops.transpose(tokens), 0), "float32")  # (T, B)
            covered = ops.sum(ops.cast(alphas, "float32") * ops.expand_dims(mask, -1), axis=0)  # (B, L)
            self.add_loss(self.attention_reg * ops.mean(ops.square(1.0 - covered)))
        last_h, last_c = hs[-1], cs[-1]
        hs, zs, alphas = (ops.transpose(t, (1, 0, 2)) for t in (hs, zs, alphas))
        return [hs, zs, alphas, last_h, last_c]

    def compute_output_spec(self, inputs):
        words, annotations, projected = inputs[0], inputs[1], inputs[2]
        batch, steps = words.shape[0], words.shape[1]
        dtype = self.compute_dtype
        return [keras.KerasTensor((batch, steps, self.units), dtype=dtype),
                keras.KerasTensor((batch, steps, annotations.shape[-1]), dtype=dtype),
                keras.KerasTensor((batch, steps, projected.shape[1]), dtype=dtype),
                keras.KerasTensor((batch, self.units), dtype=dtype),
                keras.KerasTensor((batch, self.units), dtype=dtype)]

    def macs_per_sample(self, input_shapes) -> int:
        """Multiply-accumulates of one caption (zoo.macs counts layers that loop by asking them)."""
        (steps, embed), (cells, depth) = input_shapes[0], input_shapes[1]
        per_step = (self.units * self.attention_dim + cells * self.attention_dim  # attention MLP
                    + cells * depth + (self.units if self.gate else 0)  # context and gate
                    + 4 * (embed + depth + self.units) * self.units)  # LSTM
        return int(steps) * per_step

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "attention_dim": self.attention_dim,
                "gate": self.gate, "attention_reg": self.attention_reg}


def build_encoder(config: ShowAttendTellConfig, *, input_shape, include_preprocessing: bool = True,
                  preprocessing=None, backbone_model=None):
    """image [0, 255] -> the chosen feature map (rows, columns, D) (a model named "encoder"); the
    backbone's layers past that feature level are left out.

    `backbone_model`: the feature model of `config.backbone` when the caller built it (it carries the
    preprocessing of its weights, or its family's default); otherwise it is built as Show and Tell's is.
    """
    del preprocessing
    backbone = backbone_model if backbone_model is not None else _backbone(config, input_shape, include_preprocessing,
                                                                             None)
    if config.feature not in backbone.output:
        raise UsageError(f"Backbone {config.backbone!r} has no feature map {config.feature!r}; it has "
                         f"{', '.join(sorted(backbone.output))}. Pass one of those as `feature`.")
    # inputs[0]: a registry backbone is built with a list of one input, and its `.input` is that list.
    encoder = keras.Model(backbone.inputs[0], backbone.output[config.feature], name="encoder")
    encoder.trainable = bool(config.train_backbone)
    return encoder


def build_decoder(config: ShowAttendTellConfig, *, grid: tuple[int, int, int], caption_length: int | None = None):
    """[feature map, tokens] -> next-word logits at every token position (a model named "decoder")."""
    from keras import layers

    rows, columns, depth = grid
    fmap = keras.Input((rows, columns, depth), name="features")
    tokens = keras.Input((caption_length,), dtype="int32", name="tokens")
    annotations = layers.Reshape((rows * columns, depth), name="annotations")(fmap)
    mean = layers.GlobalAveragePooling1D(name="mean_annotation")(annotations)
    h0 = layers.Dense(config.units, activation="tanh", name="init_h")(mean)
    c0 = layers.Dense(config.units, activation="tanh", name="init_c")(mean)
    projected = layers.Dense(config.attention_dim, name="attention_features")(annotations)
    # No mask_zero, as in Show and Tell: the recurrence is causal and the loss ignores padded targets.
    embedded = layers.Embedding(config.vocab_size, config.embed_dim, name="word_embedding")(tokens)
    words = layers.Dropout(config.dropout, name="word_dropout")(embedded)
    hs, zs, _, _, _ = AttentionLSTM(config.units, config.attention_dim, gate=config.gate,
                                    attention_reg=config.attention_reg, name="attention_lstm")(
        [words, annotations, projected, h0, c0, tokens])
    logits = _deep_output(embedded, hs, zs, _output_layers(config))
    return keras.Model([fmap, tokens], logits, name="decoder")


OUTPUT_LAYERS = ("output_hidden", "output_context", "deep_output", "deep_output_tanh", "output_dropout", "logits")


def _output_layers(config: ShowAttendTellConfig) -> dict:
    from keras import layers

    return {"output_hidden": layers.Dense(config.embed_dim, name="output_hidden"),
            "output_context": layers.Dense(config.embed_dim, name="output_context"),
            "deep_output": layers.Add(name="deep_output"),
            "deep_output_tanh": layers.Activation("tanh", name="deep_output_tanh"),
            "output_dropout": layers.Dropout(config.dropout, name="output_dropout"),
            # float32 logits: a softmax in float16 overflows under mixed precision.
            "logits": layers.Dense(config.vocab_size, dtype="float32", name="logits")}


def _deep_output(embedded, hs, zs, layers: dict):
    """logits = L_o tanh(E y_t-1 + L_h h_t + L_z z_t), by the layers named in OUTPUT_LAYERS."""
    x = layers["deep_output"]([embedded, layers["output_hidden"](hs), layers["output_context"](zs)])
    return layers["logits"](layers["output_dropout"](layers["deep_output_tanh"](x)))


def build_from_config(config: ShowAttendTellConfig, *, input_shape=(224, 224, 3), include_preprocessing: bool = True,
                      preprocessing=None, caption_length: int | None = None, name: str = "show_attend_tell",
                      backbone_model=None):
    """The full captioner [image, tokens] -> logits, holding the "encoder" and "decoder" sub-models.

    caption_length fixes the token input's length (None: any length), as zoo.macs.count_macs needs.
    """
    _check(config)
    input_shape = check_input_shape(input_shape, default=(224, 224, 3), min_size=16, arch="show_attend_tell",
                                    include_top=False, fixed_top=False)
    encoder = build_encoder(config, input_shape=input_shape, include_preprocessing=include_preprocessing,
                            preprocessing=preprocessing, backbone_model=backbone_model)
    decoder = build_decoder(config, grid=tuple(int(d) for d in encoder.output.shape[1:]), caption_length=caption_length)
    image = keras.Input(input_shape, name="image")
    tokens = keras.Input((caption_length,), dtype="int32", name="tokens")
    logits = decoder([encoder(image), tokens])
    return keras.Model([image, tokens], logits, name=name)


PRETRAINED = PretrainedSpec()  # weights come with the backbone (zoo's own .weights.h5 of a whole captioner loads by name)


def backbone_request(variant: str = "show_attend_tell", *, num_classes: int | None = None, input_shape=None,
                     include_top: bool = True, include_preprocessing: bool = True, preprocessing=None,
                     classifier_activation: str | None = None, caption_length: int | None = None,
                     **options: Any) -> BackboneRequest | None:
    """The backbone zoo.registry builds for `build` (same arguments); None for the "tiny" encoder."""
    if num_classes:
        options.setdefault("vocab_size", int(num_classes))
    config = make_config(variant, **options)
    if config.backbone == TINY:
        return None
    return BackboneRequest(config.backbone, config.backbone_weights, _check_input_shape(input_shape or (224, 224, 3)))


def build(variant: str = "show_attend_tell", *, num_classes: int | None = None, input_shape=None,
          include_top: bool = True, include_preprocessing: bool = True, preprocessing=None,
          classifier_activation: str | None = None, caption_length: int | None = None, backbone_model=None,
          **options: Any):
    """The registry entry point. `num_classes` > 0 is the vocabulary size (the softmax's classes).

    `include_top` and `classifier_activation` do not apply: the model's output is per-step logits.
    `backbone_model`: the backbone's feature model, when the registry built it.
    """
    del include_top, classifier_activation
    if num_classes:
        options.setdefault("vocab_size", int(num_classes))
    config = make_config(variant, **options)
    return build_from_config(config, input_shape=input_shape or (224, 224, 3), caption_length=caption_length,
                             include_preprocessing=include_preprocessing, preprocessing=preprocessing,
                             backbone_model=backbone_model)


def ShowAttendTell(*, weights: str | None = "imagenet", backbone: str = "resnet50", vocab_size: int = 10_000,
                   input_shape=(224, 224, 3), include_preprocessing: bool = True, **options: Any):
    """Show, Attend and Tell (Xu et al. 2015): soft attention over a pretrained, frozen backbone's feature map.

    Args:
        weights: the backbone's weights (a tag such as "imagenet", a path, or None for random).
        backbone: a zoo classification model name, or "tiny".
        vocab_size: size of the softmax over words (padding and unknown included).
        input_shape: image (H, W, C); the model takes pixels in [0, 255].
        **options: other ShowAttendTellConfig fields (feature, embed_dim, units, attention_dim,
            dropout, gate, attention_reg, train_backbone, ...).
    Returns:
        keras.Model [image, tokens] -> logits (batch, steps, vocab_size).
    """
    # Through zoo.build, which builds the backbone the captioner stands on.
    return registry_build("show_attend_tell", input_shape=input_shape, include_preprocessing=include_preprocessing,
                          backbone=backbone, backbone_weights=weights, vocab_size=vocab_size, **options)


def attention_grid(model) -> tuple[int, int]:
    """(rows, columns) of the feature map the captioner attends over."""
    rows, columns = model.get_layer("decoder").input[0].shape[1:3]
    return int(rows), int(columns)


def _initial_state(decoder, fmap):
    annotations = decoder.get_layer("annotations")(fmap)
    mean = decoder.get_layer("mean_annotation")(annotations)
    return [decoder.get_layer("init_h")(mean), decoder.get_layer("init_c")(mean), annotations,
            decoder.get_layer("attention_features")(annotations)]


def encoder_model(model):
    """image -> [h0, c0, annotations (L, D), projected annotations (L, A)]: where decoding starts."""
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    image = keras.Input(tuple(encoder.inputs[0].shape[1:]), name="image")
    return keras.Model(image, _initial_state(decoder, encoder(image)), name="caption_encoder")


def features_to_state_model(model):
    """feature map -> [h0, c0, annotations, projected], for decoding from cached features."""
    decoder = model.get_layer("decoder")
    fmap = keras.Input(tuple(decoder.input[0].shape[1:]), name="features")
    return keras.Model(fmap, _initial_state(decoder, fmap), name="caption_features_to_state")


def step_model(model):
    """[token (batch, 1), h, c, annotations, projected] -> [log-probabilities (batch, vocab), h, c,
    attention (batch, L)]: one decoding step, and where it looked."""
    decoder = model.get_layer("decoder")
    recurrence = decoder.get_layer("attention_lstm")
    cells, depth = decoder.get_layer("annotations").output.shape[1:]
    attention_dim = int(decoder.get_layer("attention_features").units)
    token = keras.Input((1,), dtype="int32", name="token")
    h_in = keras.Input((recurrence.units,), name="h")
    c_in = keras.Input((recurrence.units,), name="c")
    annotations = keras.Input((cells, depth), name="annotations")
    projected = keras.Input((cells, attention_dim), name="projected")
    embedded = decoder.get_layer("word_embedding")(token)
    hs, zs, alphas, h, c = recurrence([embedded, annotations, projected, h_in, c_in, token])
    logits = _deep_output(embedded, hs, zs, {name: decoder.get_layer(name) for name in OUTPUT_LAYERS})
    # Built fresh for decoding and never saved, so a plain op (no layer) takes the single step.
    logp = keras.layers.Activation("log_softmax", name="log_softmax")(logits)[:, 0]
    return keras.Model([token, h_in, c_in, annotations, projected], [logp, h, c, alphas[:, 0]], name="caption_step")


CUSTOM_OBJECTS: dict[str, Any] = {"zoo>AttentionLSTM": AttentionLSTM}
