"""Pieces every family shares: the in-model preprocessing layer, argument checks, the model
input, the classifier head and named feature maps.

Argument checks raise zoo.errors.UsageError (a ValueError) that states the rule, the value
received and what to do next, before Keras could fail deep inside a shape computation.
"""

from __future__ import annotations

from typing import Any, Callable

import keras

from zoo.errors import UsageError
from zoo.preprocessing import PREPROCESSING, adapt_preprocessing  # the one table; the rule per channel count

POOLINGS = ("avg", "max", None)


def preprocessing_config(preprocessing: dict[str, Any] | str | None, *, default: str) -> dict[str, Any]:
    """A complete preprocessing dict from a mode name, a (partial) dict or None (the family default)."""
    if preprocessing is None:
        preprocessing = default
    if isinstance(preprocessing, str):
        if preprocessing not in PREPROCESSING:
            raise UsageError(f"`preprocessing` must be one of {', '.join(map(repr, PREPROCESSING))} or a dict. "
                             f"Received: preprocessing={preprocessing!r}.")
        return dict(PREPROCESSING[preprocessing])
    if not isinstance(preprocessing, dict):
        raise UsageError(f"`preprocessing` must be a mode name or a dict with scale/mean/std/channel_order. "
                         f"Received: preprocessing={preprocessing!r}.")
    base = dict(PREPROCESSING.get(preprocessing.get("mode", ""), {"mode": "custom", "scale": 1.0, "mean": [0.0],
                                                                   "std": [1.0], "channel_order": "rgb"}))
    base.update(preprocessing)
    if base.get("channel_order", "rgb") not in ("rgb", "bgr"):
        raise UsageError(f"`channel_order` must be 'rgb' or 'bgr'. Received: channel_order={base['channel_order']!r}.")
    return base


def _vector(values: Any, key: str) -> list[float]:
    if isinstance(values, (int, float)):
        return [float(values)]
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise UsageError(f"Preprocessing `{key}` must be a number or a list of numbers. "
                         f"Received: {key}={values!r}.") from None


def check_preprocessing_channels(config: dict[str, Any], channels: int) -> None:
    """The mean/std lists must have one value or one per input channel; BGR needs 3 channels."""
    for key in ("mean", "std"):
        values = _vector(config.get(key, [0.0]), key)
        if len(values) not in (1, channels):
            raise UsageError(
                f"Preprocessing {config.get('mode', 'custom')!r} has {len(values)} `{key}` values, one per channel, "
                f"but the input has {channels} channels. Received: input_shape[-1]={channels}. Use an input with "
                f"{len(values)} channels (e.g. convert gray images to RGB), or preprocessing with one {key} per "
                f"channel (or a single value)."
            )
    if config.get("channel_order") == "bgr" and channels != 3:
        raise UsageError(f"BGR channel order needs 3 input channels. Received: {channels} channels. "
                         f"Use an RGB input or preprocessing with channel_order='rgb'.")


@keras.saving.register_keras_serializable(package="zoo")
class Preprocess(keras.layers.Layer):
    """y = (x * scale - mean) / std on pixels in [0, 255], after a channel flip for BGR."""

    def __init__(self, scale: float = 1.0, mean=(0.0,), std=(1.0,), channel_order: str = "rgb",
                 mode: str = "custom", **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.mean = _vector(mean, "mean")
        self.std = _vector(std, "std")
        self.channel_order = channel_order
        self.mode = mode
        n = max(len(self.mean), len(self.std))
        mean = self.mean * n if len(self.mean) == 1 else self.mean
        std = self.std * n if len(self.std) == 1 else self.std
        # Folded into one multiply-add: x * (scale / std) - mean / std.
        self._mul = [self.scale / s for s in std]
        self._add = [m / s for m, s in zip(mean, std)]

    def call(self, inputs):
        ops = keras.ops
        x = ops.cast(inputs, self.compute_dtype)
        if self.channel_order == "bgr":
            x = ops.flip(x, axis=-1)
        mul = ops.convert_to_tensor(self._mul, dtype=self.compute_dtype)
        add = ops.convert_to_tensor(self._add, dtype=self.compute_dtype)
        return x * mul - add

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "mean": list(self.mean), "std": list(self.std),
                "channel_order": self.channel_order, "mode": self.mode}


# Preprocess stays registered so that .keras files saved before models used built-in layers still load.
CUSTOM_OBJECTS = {"zoo>Preprocess": Preprocess}


def affine(x, mul: list[float], add: list[float], *, name: str):
    """x * mul + add per channel as a keras.layers.Rescaling (no weights, portable)."""
    scale = mul[0] if len(mul) == 1 else list(mul)
    offset = add[0] if len(add) == 1 else list(add)
    return keras.layers.Rescaling(scale=scale, offset=offset, name=name)(x)


def channel_flip(x, *, name: str):
    """RGB <-> BGR with built-in, weightless layers: channels moved to axis 1, cut apart with
    Cropping2D (which crops axes 1 and 2 of a channels_last tensor), concatenated in reverse
    order and moved back. Exact, and any height and width."""
    layers = keras.layers
    chw = layers.Permute((3, 1, 2), name=f"{name}_chw")(x)
    parts = [layers.Cropping2D(((c, 2 - c), (0, 0)), data_format="channels_last", name=f"{name}_{c}")(chw)
             for c in (2, 1, 0)]
    chw = layers.Concatenate(axis=1, name=f"{name}_concat")(parts)
    return layers.Permute((2, 3, 1), name=f"{name}_hwc")(chw)


def preprocessing_layers(x, config: dict[str, Any], *, name: str = "preprocess"):
    """Pixels in [0, 255] -> the model's input as `config` says, y = (x * scale - mean) / std
    after a flip for BGR, with Keras's built-in layers only (a channel flip, then a Rescaling named
    `name`), so that a saved .keras opens with plain keras.saving.load_model, without zoo.

    The Rescaling layer also carries the config as plain attributes (mode, mean, std,
    channel_order) for code that inspects a model in memory; they are not saved.
    """
    mean = _vector(config.get("mean", [0.0]), "mean")
    std = _vector(config.get("std", [1.0]), "std")
    n = max(len(mean), len(std))
    mean, std = (mean * n if len(mean) == 1 else mean), (std * n if len(std) == 1 else std)
    scale = float(config.get("scale", 1.0))
    if config.get("channel_order") == "bgr" and x.shape[-1] == 3:
        x = channel_flip(x, name=f"{name}_bgr")
    mul = [scale / s for s in std]
    add = [-m / s for m, s in zip(mean, std)]
    out = affine(x, mul, add, name=name)
    layer = out._keras_history[0]
    for key, value in (("mode", config.get("mode", "custom")), ("mean", mean), ("std", std),
                       ("channel_order", config.get("channel_order", "rgb"))):
        object.__setattr__(layer, key, value)  # not Keras state: a description for readers in memory
    return out


# --------------------------------------------------------------------------- argument checks


def check_classes(num_classes: Any, *, include_top: bool) -> int:
    """The number of classes of the head; ignored (as keras.applications does) without a head."""
    if not include_top:
        return num_classes if isinstance(num_classes, int) else 0
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise UsageError(f"`classes` must be a positive integer. Received: classes={num_classes!r}. "
                         f"Pass the number of classes of your data, e.g. classes=10.")
    return num_classes


def check_pooling(pooling: Any) -> None:
    if pooling not in POOLINGS:
        raise UsageError(f"`pooling` must be one of 'avg', 'max' or None. Received: pooling={pooling!r}.")


def check_activation(activation: Any) -> None:
    if activation is not None and not isinstance(activation, str) and not callable(activation):
        raise UsageError(f"`classifier_activation` must be None, a name such as 'softmax', or a callable. "
                         f"Received: classifier_activation={activation!r}.")


def check_data_format() -> None:
    """zoo builds channels_last networks only: refuse channels_first rather than build a wrong graph."""
    fmt = keras.config.image_data_format()
    if fmt != "channels_last":
        raise UsageError(f"zoo.models builds channels_last networks (inputs (height, width, channels)) only. "
                         f"Received: keras.config.image_data_format()={fmt!r}. Call "
                         f"keras.config.set_image_data_format('channels_last') and transpose NCHW data with "
                         f"keras.ops.transpose(x, (0, 2, 3, 1)).")


def check_input_shape(input_shape: Any, *, default: tuple[int, int, int], min_size: int, arch: str,
                      include_top: bool, fixed_top: bool, input_tensor=None) -> tuple:
    """A valid (H, W, C): None gives the input_tensor's shape or the default. H and W may be None
    (any size at run time) unless `fixed_top`: a Flatten head with include_top needs exactly the
    default H, W."""
    check_data_format()
    if input_shape is None and input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        return tuple(default)
    shape = tuple(input_shape)

    def size(d, *, spatial: bool) -> bool:
        return (spatial and d is None) or (isinstance(d, int) and not isinstance(d, bool))

    if len(shape) != 3 or not (size(shape[0], spatial=True) and size(shape[1], spatial=True)
                               and size(shape[2], spatial=False)):
        raise UsageError(f"`input_shape` must be (height, width, channels): integers, height and width may be None. "
                         f"Received: input_shape={input_shape!r}. For {arch} use e.g. {tuple(default)}.")
    h, w, c = shape
    if c < 1:
        raise UsageError(f"`input_shape` needs at least one channel. Received: input_shape={shape}.")
    if any(d is not None and d < min_size for d in (h, w)):
        raise UsageError(f"{arch} needs an input of at least {min_size}x{min_size} pixels. "
                         f"Received: input_shape={shape}. Resize the images or use a larger input_shape.")
    if include_top and fixed_top and (h, w) != tuple(default[:2]):
        raise UsageError(
            f"{arch} with include_top=True needs input {default[0]}x{default[1]} because its dense head has a "
            f"fixed size. Received: input_shape={shape}. Use include_top=False (with pooling='avg' for a vector), "
            f"or input_shape={(default[0], default[1], c)}."
        )
    return shape


# --------------------------------------------------------------------------- building blocks


def model_input(input_shape: tuple[int, int, int], *, include_preprocessing: bool,
                preprocessing: dict[str, Any] | str | None, default_preprocessing: str, input_tensor=None):
    """(inputs, x, config): the Keras input and the tensor after the optional Preprocess layer.
    Gray and 4+-channel inputs get the mode's preprocessing by zoo.preprocessing.adapt_preprocessing."""
    check_data_format()
    if input_tensor is None:
        inputs = keras.Input(shape=input_shape)  # Keras's unique default name: two zoo models can share a graph
    elif keras.backend.is_keras_tensor(input_tensor):
        inputs = input_tensor
    else:
        inputs = keras.Input(tensor=input_tensor, shape=input_shape)
    config = None
    x = inputs
    if include_preprocessing:
        config = preprocessing_config(preprocessing, default=default_preprocessing)
        if input_shape[-1] != 2:  # two channels have no documented rule (gray + alpha? two bands?): refused below
            config = adapt_preprocessing(config, input_shape[-1])
        check_preprocessing_channels(config, input_shape[-1])
        x = preprocessing_layers(x, config)
    return inputs, x, config


def head_dtype() -> str | None:
    """float32 for the classifier under a mixed-precision policy, so softmax never runs in float16."""
    policy = keras.mixed_precision.global_policy()
    return "float32" if policy.compute_dtype != policy.variable_dtype else None


def predictions(x, num_classes: int, activation, *, name: str = "predictions"):
    return keras.layers.Dense(num_classes, activation=activation, dtype=head_dtype(), name=name)(x)


def global_pool(x, pooling: str | None):
    """keras.applications' `pooling` for include_top=False: "avg_pool" / "max_pool" layers, or x."""
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def adaptive_avg_pool(x, size: int, *, name: str):
    """PyTorch's AdaptiveAvgPool2d (same bins), for torchvision heads that accept any input size."""
    if not hasattr(keras.layers, "AdaptiveAveragePooling2D"):
        raise UsageError(f"This model needs keras.layers.AdaptiveAveragePooling2D, missing from Keras "
                         f"{keras.__version__}. Upgrade Keras (`pip install -U keras`; 3.15 is tested).")
    return keras.layers.AdaptiveAveragePooling2D(size, name=name)(x)


def check_head_args(num_classes, *, include_top: bool, pooling, classifier_activation) -> int | None:
    """The keras.applications head arguments (classes, pooling, classifier_activation), checked."""
    num_classes = check_classes(num_classes, include_top=include_top)
    check_pooling(pooling)
    check_activation(classifier_activation)
    return num_classes


def check_dropout(rate: float) -> None:
    if not 0.0 <= rate < 1.0:
        raise UsageError(f"`dropout` must be in [0, 1). Received: dropout={rate!r}.")


def finish(inputs, x, head, *, num_classes, classifier_activation, pooling, name: str):
    """The classifier model: with a `head` (include_top), head(x) then the prediction layer;
    without one, the feature map reduced by keras.applications' `pooling`."""
    x = predictions(head(x), num_classes, classifier_activation) if head else global_pool(x, pooling)
    return make_model(inputs, x, name=name)


def make_model(inputs, outputs, *, name: str):
    source = keras.utils.get_source_inputs(inputs)
    # A single input tensor (not a one-element list) keeps Keras's input structure warning away.
    return keras.Model(source[0] if len(source) == 1 else source, outputs, name=name)


def feature_model(model, layers: dict[str, str], *, name: str | None = None):
    """A model with the same inputs whose output is {key: output of layer name}, in the given order."""
    missing = [layer for layer in layers.values() if layer not in {lyr.name for lyr in model.layers}]
    if missing:
        raise UsageError(f"Model {model.name!r} has no layer {missing[0]!r} for its feature maps. "
                         f"Pass a model built by zoo.build (or the family's builder) for this family.")
    outputs = {key: model.get_layer(layer).output for key, layer in layers.items()}
    # model.inputs (a list) as the heads of zoo.models.fcn / yolo_lite expect when they re-wire it.
    return keras.Model(model.inputs, outputs, name=name or f"{model.name}_features")


def keras_style(arch: str, *, weights, input_tensor, build: Callable[..., Any], default_classes: int = 1000,
                **kwargs):
    """Shared body of the keras.applications-style functions (ResNet50(...), VGG16(...), ...).

    keras.applications' defaults: without a head and without input_shape / input_tensor the input
    is (None, None, C), any size. `weights` None builds the bare architecture; a tag or a path goes
    through zoo.build, which resolves, verifies and loads it (reached through zoo.models.spec,
    installed by `import zoo`); `classes` left at its default then follows the weights' classes.
    """
    import sys

    check_data_format()
    default_input = getattr(sys.modules[build.__module__], "DEFAULT_INPUT", None)
    if (kwargs.get("input_shape") is None and input_tensor is None and not kwargs.get("include_top", True)
            and default_input is not None):
        kwargs["input_shape"] = (None, None, default_input[-1])
    if weights is None or (isinstance(weights, str) and weights.lower() == "none"):
        return build(input_tensor=input_tensor, **kwargs)
    if input_tensor is not None and not keras.backend.is_keras_tensor(input_tensor):
        raise UsageError(f"`input_tensor` with weights={weights!r} must be a Keras tensor (keras.Input(...) or a "
                         f"layer's output). Received: {type(input_tensor).__name__}.")
    from zoo.models.spec import registry_build

    variant_kwargs = dict(kwargs)
    if input_tensor is not None:
        variant_kwargs["input_shape"] = tuple(input_tensor.shape[1:])
    variant_kwargs.pop("variant", None)
    name = variant_kwargs.pop("name", None)
    num_classes = variant_kwargs.pop("num_classes")
    if num_classes == default_classes:
        num_classes = None  # the weights' own classes (keras.applications: classes only without weights)
    model = registry_build(arch, weights=weights, num_classes=num_classes, **variant_kwargs)
    if input_tensor is not None:
        # keras.applications' meaning: the model starts at input_tensor's source inputs.
        model = make_model(input_tensor, model(input_tensor), name=name or model.name)
    if name:
        # zoo.build names the model after the architecture; Keras has no public setter for a
        # built model's name.
        model.name = name
    return model


def keras_style_function(build: Callable[..., Any], variant: str, fn_name: str, *, paper: str, note: str = ""):
    """The keras.applications-style function (ResNet50(...), VGG16(...)) of one variant of a family."""

    def fn(include_top: bool = True, weights=None, input_tensor=None, input_shape=None, pooling=None,
           classes: int = 1000, classifier_activation="softmax", name: str | None = None, *,
           include_preprocessing: bool = True, **options):
        return keras_style(variant, weights=weights, input_tensor=input_tensor, build=build, variant=variant,
                           include_top=include_top, input_shape=input_shape, pooling=pooling,
                           num_classes=classes, classifier_activation=classifier_activation, name=name,
                           include_preprocessing=include_preprocessing, **options)

    fn.__name__ = fn.__qualname__ = fn_name
    fn.__doc__ = (f"keras.applications-style {fn_name} ({paper}); `weights` is None, a manifest tag or a path "
                  f"(keras HDF5, torchvision safetensors, zoo .weights.h5).{note}")
    return fn


def preprocess_input_function(family: str):
    """keras.applications' `preprocess_input(x, data_format=None)` for a family module.

    zoo models carry their preprocessing (include_preprocessing=True, the default) and take pixels
    in [0, 255], so by default this returns `x` unchanged, as keras.applications' EfficientNet and
    ConvNeXt modules do. For a model built with include_preprocessing=False, pass the weights'
    `mode` ("torch", "caffe", "tf", "unit" or a dict; zoo.info(name)["weights"] lists it).
    """

    def preprocess_input(x, data_format=None, mode=None):
        if data_format not in (None, "channels_last"):
            raise UsageError(f"zoo's preprocess_input works on channels_last data. Received: "
                             f"data_format={data_format!r}. Transpose NCHW data to NHWC first.")
        if mode is None:
            return x
        from zoo.preprocessing import normalise

        return normalise(x, preprocessing_config(mode, default="unit"))

    preprocess_input.__doc__ = (f"{family}: `x` unchanged (zoo models preprocess inside, from pixels in [0, 255]); "
                                f"with `mode` (e.g. 'torch'), the preprocessing a model built with "
                                f"include_preprocessing=False expects.")
    return preprocess_input


def decode_predictions_function(family: str, labels_name: str):
    """keras.applications' `decode_predictions(preds, top=5)` for a family module: for each row,
    the `top` (class id, class name, score) tuples by descending score; the class id is the index
    as a string. `labels` (a list of names) replaces the family's label list `labels_name`."""

    def decode_predictions(preds, top: int = 5, *, labels=None):
        import numpy as np

        preds = np.asarray(keras.ops.convert_to_numpy(preds))
        names = list(labels) if labels is not None else None
        if names is None:
            from zoo.models.spec import read_labels

            names = read_labels(labels_name) or []
        if preds.ndim != 2 or preds.shape[1] != len(names):
            raise UsageError(f"`decode_predictions` expects a batch of predictions of shape (samples, {len(names)}) "
                             f"({labels_name} classes). Received: shape {tuple(preds.shape)}. Pass labels=[...] "
                             f"for a model with other classes.")
        out = []
        for row in preds:
            order = np.argsort(-row, kind="stable")[:top]
            out.append([(str(int(i)), names[i], float(row[i])) for i in order])
        return out

    decode_predictions.__doc__ = (f"{family}: the top (class id, class name, score) tuples of each row, with the "
                                  f"{labels_name} labels unless `labels` is given.")
    return decode_predictions


def make_options(cls, options: dict[str, Any], *, arch: str, base=None):
    """A frozen options dataclass from keyword `options`, checking names and Literal values."""
    import dataclasses
    import typing

    base = base if base is not None else cls()
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise UsageError(f"{arch} has no option {unknown[0]!r}. Received: {unknown[0]}={options[unknown[0]]!r}. "
                         f"Options of {arch}: {', '.join(sorted(fields)) or 'none'}.")
    hints = typing.get_type_hints(cls)
    for key, value in options.items():
        if typing.get_origin(hints[key]) is typing.Literal and value not in typing.get_args(hints[key]):
            choices = ", ".join(repr(v) for v in typing.get_args(hints[key]))
            raise UsageError(f"`{key}` of {arch} must be one of {choices}. Received: {key}={value!r}.")
    return dataclasses.replace(base, **options)


def torch_sequential_names(modules: list[str], state, model) -> dict[str, str]:
    """A TorchMapper for torchvision's VGG and AlexNet: `features.N` and `classifier.N` are numbered
    Sequentials, so their convolutions, batch norms and linears map in order onto the model's
    layers of each kind."""
    import re

    by_kind: dict[str, list[str]] = {"Conv2D": [], "BatchNormalization": [], "Dense": []}
    for layer in model.layers:
        if type(layer).__name__ in by_kind and layer.weights:
            by_kind[type(layer).__name__].append(layer.name)

    def index(m: str) -> tuple[int, int]:
        head, num = m.split(".")
        return (0 if head == "features" else 1, int(num))

    seq = sorted((m for m in modules if re.fullmatch(r"(features|classifier)\.\d+", m)), key=index)
    counters = {kind: 0 for kind in by_kind}
    names = {}
    for m in seq:
        if f"{m}.running_mean" in state:
            kind = "BatchNormalization"
        elif state[f"{m}.weight"].ndim == 4:
            kind = "Conv2D"
        else:
            kind = "Dense"
        i = counters[kind]
        counters[kind] += 1
        if i < len(by_kind[kind]):
            names[m] = by_kind[kind][i]
    return names
