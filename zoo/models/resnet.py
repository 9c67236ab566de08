"""ResNet-18/34/50/101/152 (He et al. 2015, Deep Residual Learning for Image Recognition, arXiv 1512.03385).

Two conventions are in use and both are built here (`style`):
- "torchvision" (default): v1.5, convolutions without bias, the stride of a bottleneck in its
  3x3 convolution, BN epsilon 1e-5. Strided 3x3 convolutions pad one pixel on each side
  explicitly (as PyTorch does) instead of Keras's asymmetric "same".
- "keras": keras.applications' v1, convolutions with bias, the stride in the first 1x1
  convolution, BN epsilon 1.001e-5.
Layer names are keras.applications' (conv1_conv, conv2_block1_1_conv, ..., conv5_block3_out,
avg_pool, predictions), so its HDF5 files load by name. Feature maps: s4..s32 = the outputs of
the conv2..conv5 stages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import keras
from keras import layers

from zoo.models import common
from zoo.models.spec import PretrainedSpec, per_module


@dataclass(frozen=True)
class ResNetConfig:
    depths: tuple[int, ...] = (3, 4, 6, 3)  # residual blocks in stages conv2..conv5
    block: Literal["basic", "bottleneck"] = "bottleneck"  # two 3x3 convolutions, or 1x1-3x3-1x1 (x4 width)
    style: Literal["keras", "torchvision"] = "torchvision"  # see the module docstring


VARIANTS = {
    "resnet18": ResNetConfig((2, 2, 2, 2), "basic"),
    "resnet34": ResNetConfig((3, 4, 6, 3), "basic"),
    "resnet50": ResNetConfig((3, 4, 6, 3), "bottleneck"),
    "resnet101": ResNetConfig((3, 4, 23, 3), "bottleneck"),
    "resnet152": ResNetConfig((3, 8, 36, 3), "bottleneck"),
}
DEFAULT_INPUT = (224, 224, 3)
MIN_SIZE = 32  # five stride-2 steps


def _conv_bn(x, filters, kernel, *, stride, cfg, name, relu=True):
    """Convolution + BN (+ ReLU) named name_conv / name_bn / name_relu."""
    keras_style = cfg.style == "keras"
    if kernel > 1 and stride > 1 and not keras_style:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same" if kernel > 1 else "valid"
    x = layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=keras_style, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(axis=-1, epsilon=1.001e-5 if keras_style else 1e-5,
                                  momentum=0.99 if keras_style else 0.9, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


def basic_block(x, filters: int, *, stride: int, cfg: ResNetConfig, name: str):
    """Two 3x3 convolutions and a shortcut (a 1x1 projection when the shape changes)."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, stride=stride, cfg=cfg, name=f"{name}_0", relu=False)
    x = _conv_bn(x, filters, 3, stride=stride, cfg=cfg, name=f"{name}_1")
    x = _conv_bn(x, filters, 3, stride=1, cfg=cfg, name=f"{name}_2", relu=False)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def bottleneck_block(x, filters: int, *, stride: int, cfg: ResNetConfig, name: str):
    """1x1 -> 3x3 -> 1x1 (4x filters); the stride sits in the 1x1 (keras) or the 3x3 (torchvision)."""
    shortcut = x
    if stride != 1 or x.shape[-1] != 4 * filters:
        shortcut = _conv_bn(x, 4 * filters, 1, stride=stride, cfg=cfg, name=f"{name}_0", relu=False)
    first, middle = (stride, 1) if cfg.style == "keras" else (1, stride)
    x = _conv_bn(x, filters, 1, stride=first, cfg=cfg, name=f"{name}_1")
    x = _conv_bn(x, filters, 3, stride=middle, cfg=cfg, name=f"{name}_2")
    x = _conv_bn(x, 4 * filters, 1, stride=1, cfg=cfg, name=f"{name}_3", relu=False)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def stem(x, cfg: ResNetConfig):
    """7x7/2 convolution, BN, ReLU, 3x3/2 max pool: stride 4."""
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = layers.Conv2D(64, 7, strides=2, use_bias=cfg.style == "keras", name="conv1_conv")(x)
    x = layers.BatchNormalization(axis=-1, epsilon=1.001e-5 if cfg.style == "keras" else 1e-5,
                                  momentum=0.99 if cfg.style == "keras" else 0.9, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    # Zero padding equals PyTorch's -inf padding here: the input is non-negative after ReLU.
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def build(variant: str = "resnet50", *, num_classes: int | None = 1000, input_shape=None, include_top: bool = True,
          include_preprocessing: bool = True, preprocessing=None, classifier_activation="softmax",
          pooling: str | None = None, input_tensor=None, name: str | None = None, **options) -> keras.Model:
    """ResNet `variant` ("resnet18".."resnet152"); options: style="torchvision"|"keras", depths, block."""
    cfg = common.make_options(ResNetConfig, options, arch=variant, base=VARIANTS[variant])
    num_classes = common.check_head_args(num_classes, include_top=include_top, pooling=pooling,
                                         classifier_activation=classifier_activation)
    shape = common.check_input_shape(input_shape, default=DEFAULT_INPUT, min_size=MIN_SIZE, arch=variant,
                                     include_top=include_top, fixed_top=False,
                                     input_tensor=input_tensor)
    inputs, x, _ = common.model_input(shape, include_preprocessing=include_preprocessing, preprocessing=preprocessing,
                                      default_preprocessing="caffe" if cfg.style == "keras" else "torch",
                                      input_tensor=input_tensor)
    x = stem(x, cfg)
    block = bottleneck_block if cfg.block == "bottleneck" else basic_block
    for stage, (blocks, filters) in enumerate(zip(cfg.depths, (64, 128, 256, 512)), start=2):
        for i in range(1, blocks + 1):
            stride = 2 if i == 1 and stage > 2 else 1
            x = block(x, filters, stride=stride, cfg=cfg, name=f"conv{stage}_block{i}")

    def head(x):
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return x

    return common.finish(inputs, x, head if include_top else None, num_classes=num_classes,
                         classifier_activation=classifier_activation, pooling=pooling, name=name or variant)


def feature_model(model: keras.Model) -> keras.Model:
    """{"s4", "s8", "s16", "s32"}: the last block output of stages conv2..conv5."""
    names = [layer.name for layer in model.layers]
    last = {}
    for stage in range(2, 6):
        outs = [n for n in names if n.startswith(f"conv{stage}_block") and n.endswith("_out")]
        if outs:
            last[f"s{2 ** stage}"] = outs[-1]
    return common.feature_model(model, last or {"s4": "conv2_block1_out"})


def torch_layer_name(module: str) -> str | None:
    """torchvision's module path -> the keras.applications layer name zoo uses."""
    if module in ("conv1", "bn1"):
        return "conv1_conv" if module == "conv1" else "conv1_bn"
    if module == "fc":
        return "predictions"
    m = re.fullmatch(r"layer(\d)\.(\d+)\.(conv|bn)(\d)", module)
    if m:
        stage, block, kind, k = m.groups()
        return f"conv{int(stage) + 1}_block{int(block) + 1}_{k}_{kind}"
    m = re.fullmatch(r"layer(\d)\.(\d+)\.downsample\.([01])", module)
    if m:
        stage, block, idx = m.groups()
        return f"conv{int(stage) + 1}_block{int(block) + 1}_0_{'conv' if idx == '0' else 'bn'}"
    return None


def implied_style(tensors) -> dict[str, str]:
    """A zoo .weights.h5 whose convolutions mostly carry a bias is Keras's v1, otherwise torchvision's."""
    convs = [key for key in tensors if re.fullmatch(r"conv2d(_\d+)?", key)]
    if not convs:
        return {}
    with_bias = sum(len(tensors[key]) == 2 for key in convs)
    return {"style": "keras" if with_bias > len(convs) // 2 else "torchvision"}


PRETRAINED = PretrainedSpec(
    file_defaults={"keras": ("caffe", {"style": "keras"}), "torch": ("torch", {"style": "torchvision"})},
    torch_mapper=per_module(torch_layer_name),
    recognise=implied_style,
)

_PAPER = "He et al. 2015"
_NOTE = " Options: style='torchvision'|'keras'."
ResNet18 = common.keras_style_function(build, "resnet18", "ResNet18", paper=_PAPER, note=_NOTE)
ResNet34 = common.keras_style_function(build, "resnet34", "ResNet34", paper=_PAPER, note=_NOTE)
ResNet50 = common.keras_style_function(build, "resnet50", "ResNet50", paper=_PAPER, note=_NOTE)
ResNet101 = common.keras_style_function(build, "resnet101", "ResNet101", paper=_PAPER, note=_NOTE)
ResNet152 = common.keras_style_function(build, "resnet152", "ResNet152", paper=_PAPER, note=_NOTE)

preprocess_input = common.preprocess_input_function("resnet")
decode_predictions = common.decode_predictions_function("resnet", "imagenet")
