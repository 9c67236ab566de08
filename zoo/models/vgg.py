"""VGG-11/13/16/19 and their batch-norm variants (Simonyan & Zisserman 2014, Very Deep
Convolutional Networks for Large-Scale Image Recognition, arXiv 1409.1556).

Layer names are keras.applications' (block1_conv1 ... block5_pool, flatten, fc1, fc2,
predictions), so its HDF5 files load by name. The head is torchvision's: 4096-4096 with dropout
0.5 after each hidden layer (dropout has no weights, so keras files still fit). The _bn variants
put BatchNormalization (epsilon 1e-5, as torchvision) after each convolution, named
block1_conv1_bn. The dense head flattens a 7x7 map, so include_top=True needs a 224x224 input.

Feature maps: s4, s8, s16, s32 = block2_pool .. block5_pool; pool3, pool4, pool5 (the names FCN
uses) are block3_pool, block4_pool, block5_pool (the same tensors as s8, s16, s32).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from zoo.models import common
from zoo.models.spec import PretrainedSpec


@dataclass(frozen=True)
class VGGConfig:
    depths: tuple[int, ...] = (2, 2, 3, 3, 3)  # 3x3 convolutions in each of the five blocks
    batch_norm: bool = False  # BatchNormalization after each convolution (the _bn variants)
    dropout: float = 0.5  # dropout after fc1 and fc2, as torchvision


VARIANTS = {
    "vgg11": VGGConfig((1, 1, 2, 2, 2)),
    "vgg13": VGGConfig((2, 2, 2, 2, 2)),
    "vgg16": VGGConfig((2, 2, 3, 3, 3)),
    "vgg19": VGGConfig((2, 2, 4, 4, 4)),
    "vgg11_bn": VGGConfig((1, 1, 2, 2, 2), batch_norm=True),
    "vgg13_bn": VGGConfig((2, 2, 2, 2, 2), batch_norm=True),
    "vgg16_bn": VGGConfig((2, 2, 3, 3, 3), batch_norm=True),
    "vgg19_bn": VGGConfig((2, 2, 4, 4, 4), batch_norm=True),
}
DEFAULT_INPUT = (224, 224, 3)
MIN_SIZE = 32  # five 2x2 pools
FILTERS = (64, 128, 256, 512, 512)
FEATURES = {"s4": "block2_pool", "s8": "block3_pool", "s16": "block4_pool", "s32": "block5_pool",
            "pool3": "block3_pool", "pool4": "block4_pool", "pool5": "block5_pool"}


def vgg_block(x, filters: int, convs: int, *, batch_norm: bool, name: str):
    """`convs` 3x3 convolutions (+ BN) with ReLU, then a 2x2 max pool."""
    for i in range(1, convs + 1):
        conv = f"{name}_conv{i}"
        if batch_norm:
            x = layers.Conv2D(filters, 3, padding="same", name=conv)(x)
            x = layers.BatchNormalization(axis=-1, epsilon=1e-5, momentum=0.9, name=f"{conv}_bn")(x)
            x = layers.Activation("relu", name=f"{conv}_relu")(x)
        else:
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=conv)(x)
    return layers.MaxPooling2D(2, strides=2, name=f"{name}_pool")(x)


def build(variant: str = "vgg16", *, num_classes: int | None = 1000, input_shape=None, include_top: bool = True,
          include_preprocessing: bool = True, preprocessing=None, classifier_activation="softmax",
          pooling: str | None = None, input_tensor=None, name: str | None = None, **options) -> keras.Model:
    """VGG `variant` ("vgg11".."vgg19", "vgg11_bn".."vgg19_bn"); options: depths, batch_norm, dropout."""
    cfg = common.make_options(VGGConfig, options, arch=variant, base=VARIANTS[variant])
    num_classes = common.check_head_args(num_classes, include_top=include_top, pooling=pooling,
                                         classifier_activation=classifier_activation)
    common.check_dropout(cfg.dropout)
    shape = common.check_input_shape(input_shape, default=DEFAULT_INPUT, min_size=MIN_SIZE, arch=variant,
                                     include_top=include_top, fixed_top=True,
                                     input_tensor=input_tensor)
    inputs, x, _ = common.model_input(shape, include_preprocessing=include_preprocessing, preprocessing=preprocessing,
                                      default_preprocessing="torch", input_tensor=input_tensor)
    for b, (convs, filters) in enumerate(zip(cfg.depths, FILTERS), start=1):
        x = vgg_block(x, filters, convs, batch_norm=cfg.batch_norm, name=f"block{b}")

    def head(x):
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc1")(x)
        x = layers.Dropout(cfg.dropout, name="fc1_dropout")(x)
        x = layers.Dense(4096, activation="relu", name="fc2")(x)
        x = layers.Dropout(cfg.dropout, name="fc2_dropout")(x)
        return x

    return common.finish(inputs, x, head if include_top else None, num_classes=num_classes,
                         classifier_activation=classifier_activation, pooling=pooling, name=name or variant)


def feature_model(model: keras.Model) -> keras.Model:
    """{"s4", "s8", "s16", "s32", "pool3", "pool4", "pool5"} of a VGG built by zoo."""
    return common.feature_model(model, FEATURES)


PRETRAINED = PretrainedSpec(file_defaults={"keras": ("caffe", {}), "torch": ("torch", {})},
                            torch_mapper=common.torch_sequential_names)

_PAPER = "Simonyan & Zisserman 2014"
VGG11 = common.keras_style_function(build, "vgg11", "VGG11", paper=_PAPER)
VGG13 = common.keras_style_function(build, "vgg13", "VGG13", paper=_PAPER)
VGG16 = common.keras_style_function(build, "vgg16", "VGG16", paper=_PAPER)
VGG19 = common.keras_style_function(build, "vgg19", "VGG19", paper=_PAPER)
VGG11BN = common.keras_style_function(build, "vgg11_bn", "VGG11BN", paper=_PAPER)
VGG13BN = common.keras_style_function(build, "vgg13_bn", "VGG13BN", paper=_PAPER)
VGG16BN = common.keras_style_function(build, "vgg16_bn", "VGG16BN", paper=_PAPER)
VGG19BN = common.keras_style_function(build, "vgg19_bn", "VGG19BN", paper=_PAPER)

preprocess_input = common.preprocess_input_function("vgg")
decode_predictions = common.decode_predictions_function("vgg", "imagenet")
