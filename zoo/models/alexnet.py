"""AlexNet in torchvision's layout (Krizhevsky 2014, One weird trick for parallelizing
convolutional neural networks, arXiv 1404.5997): 64@11x11/4, 192@5x5, 384@3x3, 256@3x3,
256@3x3 with three 3x3/2 max pools, adaptive average pooling to 6x6, then dropout-4096-dropout-4096-classes.

Adaptive pooling (PyTorch's bins, keras.layers.AdaptiveAveragePooling2D) makes the dense head
fit any input from 63x63 up, as in torchvision. Layer names: conv1..conv5, pool1..pool3,
avgpool, flatten, fc1, fc2, predictions. Note for weight converters: torchvision flattens the
6x6x256 map channels-first, Keras channels-last, so fc1's rows are permuted between the two.

Feature maps (sizes at 224x224): s4 = conv1 (55x55), s8 = conv2 (27x27), s16 = conv5 (13x13),
s32 = pool3 (6x6); the unpadded pools make them a little smaller than H/stride.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from zoo.models import common
from zoo.models.spec import PretrainedSpec


@dataclass(frozen=True)
class AlexNetConfig:
    dropout: float = 0.5  # before fc1 and fc2, as torchvision


VARIANTS = {"alexnet": AlexNetConfig()}
DEFAULT_INPUT = (224, 224, 3)
MIN_SIZE = 63  # the smallest input that leaves at least one pixel after the third max pool
FEATURES = {"s4": "conv1", "s8": "conv2", "s16": "conv5", "s32": "pool3"}


def build(variant: str = "alexnet", *, num_classes: int | None = 1000, input_shape=None, include_top: bool = True,
          include_preprocessing: bool = True, preprocessing=None, classifier_activation="softmax",
          pooling: str | None = None, input_tensor=None, name: str | None = None, **options) -> keras.Model:
    """AlexNet (torchvision layout); options: dropout."""
    cfg = common.make_options(AlexNetConfig, options, arch=variant, base=VARIANTS[variant])
    num_classes = common.check_head_args(num_classes, include_top=include_top, pooling=pooling,
                                         classifier_activation=classifier_activation)
    common.check_dropout(cfg.dropout)
    shape = common.check_input_shape(input_shape, default=DEFAULT_INPUT, min_size=MIN_SIZE, arch=variant,
                                     include_top=include_top, fixed_top=False,
                                     input_tensor=input_tensor)
    inputs, x, _ = common.model_input(shape, include_preprocessing=include_preprocessing, preprocessing=preprocessing,
                                      default_preprocessing="torch", input_tensor=input_tensor)
    x = layers.ZeroPadding2D(2, name="conv1_pad")(x)  # PyTorch's symmetric padding=2 for the strided stem
    x = layers.Conv2D(64, 11, strides=4, activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = layers.Conv2D(192, 5, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv4")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv5")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool3")(x)

    def head(x):
        x = common.adaptive_avg_pool(x, 6, name="avgpool")
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dropout(cfg.dropout, name="fc1_dropout")(x)
        x = layers.Dense(4096, activation="relu", name="fc1")(x)
        x = layers.Dropout(cfg.dropout, name="fc2_dropout")(x)
        x = layers.Dense(4096, activation="relu", name="fc2")(x)
        return x

    return common.finish(inputs, x, head if include_top else None, num_classes=num_classes,
                         classifier_activation=classifier_activation, pooling=pooling, name=name or variant)


def feature_model(model: keras.Model) -> keras.Model:
    """{"s4", "s8", "s16", "s32"} of an AlexNet built by zoo."""
    return common.feature_model(model, FEATURES)


PRETRAINED = PretrainedSpec(file_defaults={"torch": ("torch", {})}, torch_mapper=common.torch_sequential_names)


def AlexNet(include_top: bool = True, weights=None, input_tensor=None, input_shape=None, pooling=None,
            classes: int = 1000, classifier_activation="softmax", name: str | None = None, *,
            include_preprocessing: bool = True, **options) -> keras.Model:
    """keras.applications-style AlexNet (torchvision layout); `weights` is None, a manifest tag or a path."""
    return common.keras_style("alexnet", weights=weights, input_tensor=input_tensor, build=build, variant="alexnet",
                              include_top=include_top, input_shape=input_shape, pooling=pooling,
                              num_classes=classes, classifier_activation=classifier_activation, name=name,
                              include_preprocessing=include_preprocessing, **options)

preprocess_input = common.preprocess_input_function("alexnet")
decode_predictions = common.decode_predictions_function("alexnet", "imagenet")
