"""GoogLeNet / Inception v1 with batch norm, as torchvision builds it (Szegedy et al. 2014,
Going Deeper with Convolutions, arXiv 1409.4842).

Every convolution is conv (no bias) + BN (epsilon 1e-3) + ReLU. As in torchvision, the "5x5"
branch uses a 3x3 convolution (the layout its weights were trained with). PyTorch's ceil-mode
max pools are reproduced with a bottom/right zero padding (exact: inputs are >= 0 after ReLU).
The auxiliary classifiers (`aux_logits=True`) make the model return [main, aux1, aux2]; they
are off by default (6,624,904 parameters). `transform_input=True` adds torchvision's input
transform for its ImageNet weights when the model takes torch-normalised input.

Layer names are torchvision's module paths with "." -> "_" (inception3a_branch2_0_conv,
conv1_bn, aux1_fc1), except the classifier, which is "predictions" as everywhere in zoo.
Feature maps: s4 = conv3_relu, s8 = inception3b_concat, s16 = inception4e_concat, s32 = inception5b_concat.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from zoo.models import common
from zoo.models.spec import PretrainedSpec, per_module


@dataclass(frozen=True)
class GoogLeNetConfig:
    aux_logits: bool = False  # add the two auxiliary classifiers (outputs [main, aux1, aux2])
    transform_input: bool = False  # torchvision's ImageNet-normalised -> [-1, 1] input transform
    dropout: float = 0.2  # before the classifier
    aux_dropout: float = 0.7  # inside the auxiliary classifiers


VARIANTS = {"googlenet": GoogLeNetConfig()}
DEFAULT_INPUT = (224, 224, 3)
MIN_SIZE = 32
# name: (1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool projection)
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}
FEATURES = {"s4": "conv3_relu", "s8": "inception3b_concat", "s16": "inception4e_concat", "s32": "inception5b_concat"}
_TORCH_MEAN, _TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def basic_conv(x, filters: int, kernel: int, *, stride: int = 1, name: str):
    """torchvision's BasicConv2d: conv (no bias) + BN (eps 1e-3) + ReLU, named name_conv/_bn/_relu."""
    if kernel > 1 and stride > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    x = layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(axis=-1, epsilon=1e-3, momentum=0.9, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def ceil_max_pool(x, size: int, stride: int, *, name: str):
    """PyTorch MaxPool2d(size, stride, ceil_mode=True) on a non-negative input, at any input size.

    stride - 1 zeros on the bottom and right give floor((n + stride - 1 - size) / stride) + 1 =
    ceil((n - size) / stride) + 1 windows, PyTorch's count; a window never starts in the padding
    since size >= stride, and zeros never win a max over non-negative values. The padding does not
    depend on the size, so the height and width may be None.
    """
    if stride > 1:
        x = layers.ZeroPadding2D(((0, stride - 1), (0, stride - 1)), name=f"{name}_pad")(x)
    return layers.MaxPooling2D(size, strides=stride, name=name)(x)


def inception(x, widths: tuple[int, ...], *, name: str):
    c1, c3r, c3, c5r, c5, proj = widths
    b1 = basic_conv(x, c1, 1, name=f"{name}_branch1")
    b2 = basic_conv(x, c3r, 1, name=f"{name}_branch2_0")
    b2 = basic_conv(b2, c3, 3, name=f"{name}_branch2_1")
    b3 = basic_conv(x, c5r, 1, name=f"{name}_branch3_0")
    b3 = basic_conv(b3, c5, 3, name=f"{name}_branch3_1")
    b4 = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_branch4_0")(x)
    b4 = basic_conv(b4, proj, 1, name=f"{name}_branch4_1")
    return layers.Concatenate(axis=-1, name=f"{name}_concat")([b1, b2, b3, b4])


def aux_classifier(x, num_classes: int, activation, cfg: GoogLeNetConfig, *, name: str):
    x = common.adaptive_avg_pool(x, 4, name=f"{name}_pool")
    x = basic_conv(x, 128, 1, name=f"{name}_conv")
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(1024, activation="relu", name=f"{name}_fc1")(x)
    x = layers.Dropout(cfg.aux_dropout, name=f"{name}_dropout")(x)
    return common.predictions(x, num_classes, activation, name=f"{name}_fc2")


def build(variant: str = "googlenet", *, num_classes: int | None = 1000, input_shape=None, include_top: bool = True,
          include_preprocessing: bool = True, preprocessing=None, classifier_activation="softmax",
          pooling: str | None = None, input_tensor=None, name: str | None = None, **options) -> keras.Model:
    """GoogLeNet; options: aux_logits, transform_input, dropout, aux_dropout."""
    cfg = common.make_options(GoogLeNetConfig, options, arch=variant, base=VARIANTS[variant])
    num_classes = common.check_head_args(num_classes, include_top=include_top, pooling=pooling,
                                         classifier_activation=classifier_activation)
    if cfg.aux_logits and not include_top:
        raise common.UsageError("aux_logits=True needs include_top=True (the auxiliary classifiers are heads). "
                                "Received: include_top=False. Drop aux_logits for a backbone.")
    shape = common.check_input_shape(input_shape, default=DEFAULT_INPUT, min_size=MIN_SIZE, arch=variant,
                                     include_top=include_top, fixed_top=False,
                                     input_tensor=input_tensor)
    inputs, x, _ = common.model_input(shape, include_preprocessing=include_preprocessing, preprocessing=preprocessing,
                                      default_preprocessing="torch", input_tensor=input_tensor)
    if cfg.transform_input:
        # torchvision's transform_input: x * std / 0.5 + (mean - 0.5) / 0.5, per channel.
        x = common.affine(x, [s / 0.5 for s in _TORCH_STD], [(m - 0.5) / 0.5 for m in _TORCH_MEAN],
                          name="transform_input")
    x = basic_conv(x, 64, 7, stride=2, name="conv1")
    x = ceil_max_pool(x, 3, 2, name="maxpool1")
    x = basic_conv(x, 64, 1, name="conv2")
    x = basic_conv(x, 192, 3, name="conv3")
    x = ceil_max_pool(x, 3, 2, name="maxpool2")
    aux = []
    for key, widths in INCEPTION.items():
        if key == "4a":
            x = ceil_max_pool(x, 3, 2, name="maxpool3")
        if key == "5a":
            x = ceil_max_pool(x, 2, 2, name="maxpool4")
        x = inception(x, widths, name=f"inception{key}")
        if cfg.aux_logits and key in ("4a", "4d"):
            aux.append(aux_classifier(x, num_classes, classifier_activation, cfg, name=f"aux{len(aux) + 1}"))
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(cfg.dropout, name="dropout")(x)
        x = common.predictions(x, num_classes, classifier_activation)
    else:
        x = common.global_pool(x, pooling)
    return common.make_model(inputs, [x, *aux] if aux else x, name=name or variant)


def feature_model(model: keras.Model) -> keras.Model:
    """{"s4", "s8", "s16", "s32"} of a GoogLeNet built by zoo."""
    return common.feature_model(model, FEATURES)


def torch_layer_name(module: str) -> str:
    """Layers are named by torchvision's module paths ("." -> "_"); the classifier is "predictions"."""
    return "predictions" if module == "fc" else module.replace(".", "_")


PRETRAINED = PretrainedSpec(file_defaults={"torch": ("torch", {})}, torch_mapper=per_module(torch_layer_name))


def GoogLeNet(include_top: bool = True, weights=None, input_tensor=None, input_shape=None, pooling=None,
              classes: int = 1000, classifier_activation="softmax", name: str | None = None, *,
              include_preprocessing: bool = True, **options) -> keras.Model:
    """keras.applications-style GoogLeNet (torchvision's Inception v1 with BN); `weights` None, a tag or a path."""
    return common.keras_style("googlenet", weights=weights, input_tensor=input_tensor, build=build,
                              variant="googlenet", include_top=include_top, input_shape=input_shape, pooling=pooling,
                              num_classes=classes, classifier_activation=classifier_activation, name=name,
                              include_preprocessing=include_preprocessing, **options)

preprocess_input = common.preprocess_input_function("googlenet")
decode_predictions = common.decode_predictions_function("googlenet", "imagenet")
