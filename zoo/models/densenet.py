"""DenseNet-121/169/201 (Huang et al. 2016, Densely Connected Convolutional Networks, arXiv 1608.06993).

Layer names are keras.applications' (conv1_conv, conv2_block1_0_bn ... pool2_conv, bn,
avg_pool, predictions), so its HDF5 files load by name; torchvision's files map onto the same
layers (their only difference is the BN epsilon, 1e-5 against Keras's 1.001e-5: `epsilon`).

Feature maps: s4, s8, s16 = pool2_relu, pool3_relu, pool4_relu (the normalised, activated output
of dense blocks 1-3, inside the transitions), s32 = relu (after the final BN).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import keras
from keras import layers

from zoo.models import common
from zoo.models.spec import PretrainedSpec, per_module


@dataclass(frozen=True)
class DenseNetConfig:
    blocks: tuple[int, ...] = (6, 12, 24, 16)  # conv blocks in each dense block
    growth_rate: int = 32  # channels each conv block adds
    stem_filters: int = 64  # channels of the 7x7 stem convolution
    bottleneck: int = 4  # the 1x1 convolution of a block has bottleneck * growth_rate channels
    epsilon: float = 1.001e-5  # BN epsilon (Keras); torchvision uses 1e-5


VARIANTS = {
    "densenet121": DenseNetConfig((6, 12, 24, 16)),
    "densenet169": DenseNetConfig((6, 12, 32, 32)),
    "densenet201": DenseNetConfig((6, 12, 48, 32)),
}
DEFAULT_INPUT = (224, 224, 3)
MIN_SIZE = 32  # five stride-2 steps
FEATURES = {"s4": "pool2_relu", "s8": "pool3_relu", "s16": "pool4_relu", "s32": "relu"}


def _bn_relu(x, cfg: DenseNetConfig, name: str):
    x = layers.BatchNormalization(axis=-1, epsilon=cfg.epsilon, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def conv_block(x, cfg: DenseNetConfig, *, name: str):
    """BN-ReLU-1x1 conv, BN-ReLU-3x3 conv (growth_rate channels), concatenated to the input."""
    y = _bn_relu(x, cfg, f"{name}_0")
    y = layers.Conv2D(cfg.bottleneck * cfg.growth_rate, 1, use_bias=False, name=f"{name}_1_conv")(y)
    y = _bn_relu(y, cfg, f"{name}_1")
    y = layers.Conv2D(cfg.growth_rate, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(y)
    return layers.Concatenate(axis=-1, name=f"{name}_concat")([x, y])


def transition_block(x, cfg: DenseNetConfig, *, name: str):
    """BN-ReLU, a 1x1 convolution halving the channels, 2x2 average pooling."""
    x = _bn_relu(x, cfg, name)
    x = layers.Conv2D(x.shape[-1] // 2, 1, use_bias=False, name=f"{name}_conv")(x)
    return layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def build(variant: str = "densenet121", *, num_classes: int | None = 1000, input_shape=None,
          include_top: bool = True, include_preprocessing: bool = True, preprocessing=None,
          classifier_activation="softmax", pooling: str | None = None, input_tensor=None, name: str | None = None,
          **options) -> keras.Model:
    """DenseNet `variant` ("densenet121", "densenet169", "densenet201")."""
    cfg = common.make_options(DenseNetConfig, options, arch=variant, base=VARIANTS[variant])
    num_classes = common.check_head_args(num_classes, include_top=include_top, pooling=pooling,
                                         classifier_activation=classifier_activation)
    shape = common.check_input_shape(input_shape, default=DEFAULT_INPUT, min_size=MIN_SIZE, arch=variant,
                                     include_top=include_top, fixed_top=False,
                                     input_tensor=input_tensor)
    inputs, x, _ = common.model_input(shape, include_preprocessing=include_preprocessing, preprocessing=preprocessing,
                                      default_preprocessing="torch", input_tensor=input_tensor)
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = layers.Conv2D(cfg.stem_filters, 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = layers.BatchNormalization(axis=-1, epsilon=cfg.epsilon, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)  # zeros = -inf padding after ReLU
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    for stage, blocks in enumerate(cfg.blocks, start=2):
        for i in range(1, blocks + 1):
            x = conv_block(x, cfg, name=f"conv{stage}_block{i}")
        if stage < len(cfg.blocks) + 1:
            x = transition_block(x, cfg, name=f"pool{stage}")
    x = layers.BatchNormalization(axis=-1, epsilon=cfg.epsilon, name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)

    def head(x):
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return x

    return common.finish(inputs, x, head if include_top else None, num_classes=num_classes,
                         classifier_activation=classifier_activation, pooling=pooling, name=name or variant)


def feature_model(model: keras.Model) -> keras.Model:
    """{"s4", "s8", "s16", "s32"} of a DenseNet built by zoo."""
    return common.feature_model(model, FEATURES)


def torch_layer_name(module: str) -> str | None:
    """torchvision's module path -> the keras.applications layer name zoo uses."""
    fixed = {"features.conv0": "conv1_conv", "features.norm0": "conv1_bn", "features.norm5": "bn",
             "classifier": "predictions"}
    if module in fixed:
        return fixed[module]
    m = re.fullmatch(r"features\.denseblock(\d)\.denselayer(\d+)\.(norm|conv)([12])", module)
    if m:
        block, layer, kind, k = m.groups()
        name = f"conv{int(block) + 1}_block{int(layer)}"
        return f"{name}_{int(k) - 1}_bn" if kind == "norm" else f"{name}_{k}_conv"
    m = re.fullmatch(r"features\.transition(\d)\.(norm|conv)", module)
    if m:
        block, kind = m.groups()
        return f"pool{int(block) + 1}_{'bn' if kind == 'norm' else 'conv'}"
    return None


_OLD_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def torch_fixups(state: dict) -> dict:
    """torchvision's original DenseNet checkpoints say "norm.1" where the modules say "norm1"."""
    return {_OLD_KEY.sub(r"\1\2", key): value for key, value in state.items()}


# keras.applications files expect torch-normalised input; torchvision's BN epsilon is 1e-5.
PRETRAINED = PretrainedSpec(
    file_defaults={"keras": ("torch", {}), "torch": ("torch", {"epsilon": 1e-5})},
    torch_mapper=per_module(torch_layer_name),
    torch_fixups=torch_fixups,
)

_PAPER = "Huang et al. 2016"
DenseNet121 = common.keras_style_function(build, "densenet121", "DenseNet121", paper=_PAPER)
DenseNet169 = common.keras_style_function(build, "densenet169", "DenseNet169", paper=_PAPER)
DenseNet201 = common.keras_style_function(build, "densenet201", "DenseNet201", paper=_PAPER)

preprocess_input = common.preprocess_input_function("densenet")
decode_predictions = common.decode_predictions_function("densenet", "imagenet")
