"""LeNet-5, the modern way (LeCun et al. 1998, Gradient-Based Learning Applied to Document Recognition).

32x32x1 -> conv 6@5x5 -> pool 2 -> conv 16@5x5 -> pool 2 -> dense 120 -> dense 84 -> classes:
61,706 parameters for 10 classes. We use ReLU and max pooling (the modern reading, as most
course and framework versions do); the paper's tanh-like squashing and average (subsampling)
pooling are options (`activation="tanh"`, `pool="avg"`) with the same parameter count. The
original C3 partial connection table and RBF output are not reproduced.

Feature maps (`feature_model`): "s2" = pool1 (14x14 at 32x32), "s4" = pool2 (5x5 at 32x32);
the convolutions are unpadded, so the spatial sizes are a little smaller than H/2 and H/4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import keras
from keras import layers

from zoo.models import common
from zoo.models.spec import PretrainedSpec


@dataclass(frozen=True)
class LeNetOptions:
    activation: Literal["relu", "tanh"] = "relu"  # hidden activations; "tanh" for the 1998 flavour
    pool: Literal["max", "avg"] = "max"  # subsampling layers; "avg" for the 1998 flavour


VARIANTS = {"lenet5": LeNetOptions()}
DEFAULT_INPUT = (32, 32, 1)
MIN_SIZE = 16  # two unpadded 5x5 convolutions and two 2x2 pools need at least 16 pixels
FEATURES = {"s2": "pool1", "s4": "pool2"}


def build(variant: str = "lenet5", *, num_classes: int | None = 10, input_shape=None, include_top: bool = True,
          include_preprocessing: bool = True, preprocessing=None, classifier_activation="softmax",
          pooling: str | None = None, input_tensor=None, name: str | None = None, **options) -> keras.Model:
    """LeNet-5. With include_preprocessing the input is pixels in [0, 255] (scaled to [0, 1] by default)."""
    opts = common.make_options(LeNetOptions, options, arch="lenet5", base=VARIANTS[variant])
    num_classes = common.check_head_args(num_classes, include_top=include_top, pooling=pooling,
                                         classifier_activation=classifier_activation)
    shape = common.check_input_shape(input_shape, default=DEFAULT_INPUT, min_size=MIN_SIZE, arch="lenet5",
                                     include_top=include_top, fixed_top=True,
                                     input_tensor=input_tensor)
    inputs, x, _ = common.model_input(shape, include_preprocessing=include_preprocessing, preprocessing=preprocessing,
                                      default_preprocessing="unit", input_tensor=input_tensor)
    pool = layers.MaxPooling2D if opts.pool == "max" else layers.AveragePooling2D
    x = layers.Conv2D(6, 5, activation=opts.activation, name="conv1")(x)
    x = pool(2, name="pool1")(x)
    x = layers.Conv2D(16, 5, activation=opts.activation, name="conv2")(x)
    x = pool(2, name="pool2")(x)

    def head(x):
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(120, activation=opts.activation, name="fc1")(x)
        x = layers.Dense(84, activation=opts.activation, name="fc2")(x)
        return x

    return common.finish(inputs, x, head if include_top else None, num_classes=num_classes,
                         classifier_activation=classifier_activation, pooling=pooling, name=name or "lenet5")


def feature_model(model: keras.Model) -> keras.Model:
    """{"s2": pool1, "s4": pool2} of a LeNet-5 built by zoo."""
    return common.feature_model(model, FEATURES)


PRETRAINED = PretrainedSpec()  # zoo's own .weights.h5 (the shipped fashion_mnist weights) only


def LeNet5(include_top: bool = True, weights=None, input_tensor=None, input_shape=None, pooling=None,
           classes: int = 10, classifier_activation="softmax", name: str | None = None, *,
           include_preprocessing: bool = True, **options) -> keras.Model:
    """keras.applications-style LeNet-5; `weights` is None, a manifest tag ("fashion_mnist") or a path."""
    return common.keras_style("lenet5", weights=weights, input_tensor=input_tensor, build=build, variant="lenet5",
                              default_classes=10,
                              include_top=include_top, input_shape=input_shape, pooling=pooling,
                              num_classes=classes, classifier_activation=classifier_activation, name=name,
                              include_preprocessing=include_preprocessing, **options)

preprocess_input = common.preprocess_input_function("lenet")
decode_predictions = common.decode_predictions_function("lenet", "fashion_mnist")
