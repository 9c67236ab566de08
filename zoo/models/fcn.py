"""FCN-32s / FCN-16s / FCN-8s (Long, Shelhamer & Darrell 2015, Fully Convolutional Networks for
Semantic Segmentation, arXiv 1411.4038).

    pixels -> pad to a multiple of 32 -> backbone -> fc6 (7x7x4096 conv) -> fc7 (1x1x4096 conv)
           -> score_fr (1x1, classes) -> [x2 + score_pool4] -> [x2 + score_pool3] -> upsample -> crop

- fc6/fc7 are VGG16's fc1/fc2 as convolutions: `fc_to_conv` reshapes a Dense kernel into a conv
  kernel and `load_vgg_classifier` copies a VGG16 classifier's fc1/fc2 into fc6/fc7, so the
  ImageNet classifier initialises the dense head exactly as in the paper.
- Upsampling is a Conv2DTranspose with kernel 2f and stride f initialised to exact bilinear
  interpolation (`BilinearUpsampling`); the intermediate x2 layers learn, the final one stays
  fixed as in the paper (`learn_final_upsampling=True` lets it learn too).
- The paper pads the input by 100 pixels and crops with per-layer offsets; here the input is
  padded at the bottom/right to a multiple of 32, so every stride divides it exactly, every
  upsampled map is cropped by f/2 (which puts it on the half-pixel grid of the finer map), and
  the final map is cropped to the input's own size: outputs align with inputs of any size.
- The new score layers start at zero (paper, section 4.3).
- FCN-8s with 21 classes has 134,489,759 parameters (paper Table 1: 134M), 112,896 of them in the
  fixed final upsampling.

Any zoo backbone with named feature maps can replace VGG16 (`backbone="resnet18"`): VGG's
pool3/pool4/pool5, otherwise s8/s16/s32; on those the dense head is narrower by default
(`head_channels`, `head_kernel`), which is what makes CPU training practical. zoo.registry builds
the backbone (`backbone_request`) and passes its feature model to `build`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import keras
import numpy as np
from keras import layers

from zoo.errors import UsageError
from zoo.models import common
from zoo.models.spec import BackboneRequest, PretrainedSpec, registry_build

MULTIPLE = 32  # the coarsest stride: inputs are padded to a multiple of it


@dataclass(frozen=True)
class FCNOptions:
    output_stride: Literal[32, 16, 8] = 8  # 32s: score_fr only; 16s: + pool4 skip; 8s: + pool3 skip
    backbone: str = "vgg16"  # any zoo classification model whose features give s8/s16/s32 (or pool3..pool5)
    backbone_weights: str | None = None  # tag or path for the backbone; VGG16 also fills fc6/fc7 from fc1/fc2
    head_channels: int | None = None  # width of fc6/fc7; None: 4096 on VGG (paper), 512 on other backbones
    head_kernel: int | None = None  # fc6 kernel; None: 7 on VGG (fc1 as a conv), 3 on other backbones
    dropout: float = 0.5  # after fc6 and fc7, as in the paper
    learn_final_upsampling: bool = False  # paper: final upsampling fixed to bilinear, x2 layers learned


VARIANTS = {"fcn32s": FCNOptions(output_stride=32), "fcn16s": FCNOptions(output_stride=16),
            "fcn8s": FCNOptions(output_stride=8)}
DEFAULT_INPUT = (224, 224, 3)
DEFAULT_CLASSES = 21  # Pascal VOC: background + 20 classes


# --------------------------------------------------------------------------- custom pieces


def bilinear_kernel(size: int) -> np.ndarray:
    """The 1-D x 1-D bilinear filter of a `size`-tap upsampling kernel (the FCN reference's upsample_filt)."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = np.arange(size, dtype=np.float64)
    filt = 1 - np.abs(og - center) / factor
    return np.outer(filt, filt)


@keras.saving.register_keras_serializable(package="zoo")
class BilinearUpsampling(keras.initializers.Initializer):
    """Conv2DTranspose kernel (k, k, C, C) that upsamples each channel bilinearly, channels apart."""

    def __call__(self, shape, dtype=None):
        k, k2, out_c, in_c = shape
        if k != k2 or out_c != in_c:
            raise ValueError(f"Bilinear upsampling needs a square kernel with as many outputs as inputs. "
                             f"Received kernel shape {tuple(shape)}.")
        kernel = np.zeros(shape, dtype="float32")
        filt = bilinear_kernel(k).astype("float32")
        for c in range(in_c):
            kernel[:, :, c, c] = filt
        return keras.ops.convert_to_tensor(kernel, dtype=dtype or "float32")

    def get_config(self):
        return {}


@keras.saving.register_keras_serializable(package="zoo")
class PadToMultiple(layers.Layer):
    """Zero-pads H and W at the bottom/right up to a multiple of `multiple` (pixel (i, j) stays put)."""

    def __init__(self, multiple: int = MULTIPLE, **kwargs):
        super().__init__(**kwargs)
        self.multiple = int(multiple)

    def call(self, x):
        ops = keras.ops
        shape = ops.shape(x)
        pad_h = (-shape[1]) % self.multiple
        pad_w = (-shape[2]) % self.multiple
        return ops.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])

    def compute_output_shape(self, input_shape):
        def up(d):
            return None if d is None else -(-d // self.multiple) * self.multiple

        return (input_shape[0], up(input_shape[1]), up(input_shape[2]), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple}


@keras.saving.register_keras_serializable(package="zoo")
class CropTo(layers.Layer):
    """Crops x to the height and width of `reference`, starting `offset` pixels in (the paper's Crop)."""

    def __init__(self, offset: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.offset = int(offset)

    def call(self, inputs):
        x, reference = inputs
        ops = keras.ops
        ref = ops.shape(reference)
        o = self.offset
        return x[:, o:o + ref[1], o:o + ref[2], :]

    def compute_output_shape(self, input_shapes):
        x, reference = input_shapes
        return (x[0], reference[1], reference[2], x[3])

    def get_config(self):
        return {**super().get_config(), "offset": self.offset}


CUSTOM_OBJECTS = {"zoo>BilinearUpsampling": BilinearUpsampling, "zoo>PadToMultiple": PadToMultiple,
                  "zoo>CropTo": CropTo}


# --------------------------------------------------------------------------- VGG classifier as convs


def fc_to_conv(kernel: np.ndarray, *, grid: tuple[int, int] = (7, 7), layout: Literal["hwc", "chw"] = "hwc") -> np.ndarray:
    """A Dense kernel (inputs, units) as a conv kernel (kh, kw, channels, units).

    Args:
        kernel: fc1 (grid h * grid w * channels, units) or fc2 (units_in, units) of a classifier.
        grid: the spatial size the Dense layer saw flattened (7x7 for VGG at 224); (1, 1) for fc2.
        layout: the flatten order of the source: "hwc" for Keras (channels last), "chw" for torchvision.
    """
    kernel = np.asarray(kernel)
    gh, gw = grid
    if kernel.ndim != 2 or kernel.shape[0] % (gh * gw):
        raise UsageError(f"A Dense kernel of shape (inputs, units) with inputs divisible by {gh}x{gw} is needed. "
                         f"Received: shape {kernel.shape}.")
    channels, units = kernel.shape[0] // (gh * gw), kernel.shape[1]
    if layout == "hwc":
        return kernel.reshape(gh, gw, channels, units)
    if layout == "chw":
        return kernel.reshape(channels, gh, gw, units).transpose(1, 2, 0, 3)
    raise UsageError(f"`layout` must be 'hwc' or 'chw'. Received: layout={layout!r}.")


def load_vgg_classifier(model: keras.Model, vgg: keras.Model, *, fc6: str = "fc1", fc7: str = "fc2") -> None:
    """Copy a VGG classifier's Dense fc1/fc2 (Keras layout) into the FCN's fc6/fc7 convolutions."""
    conv6, conv7 = model.get_layer("fc6"), model.get_layer("fc7")
    k6, b6 = vgg.get_layer(fc6).get_weights()
    k7, b7 = vgg.get_layer(fc7).get_weights()
    kh, kw, _, units = conv6.kernel.shape
    if (kh, kw) != (7, 7) or units != k6.shape[1] or conv7.kernel.shape[-1] != k7.shape[1]:
        raise UsageError(f"fc6/fc7 of {model.name!r} have kernels {tuple(conv6.kernel.shape)} and "
                         f"{tuple(conv7.kernel.shape)}, which cannot take VGG's fc1 {k6.shape} and fc2 {k7.shape}. "
                         f"Build the FCN with the VGG16 backbone and the default head.")
    conv6.set_weights([fc_to_conv(k6, grid=(7, 7)), b6])
    conv7.set_weights([fc_to_conv(k7, grid=(1, 1)), b7])


# --------------------------------------------------------------------------- builder


def _check_input_shape(input_shape: Any) -> tuple:
    if input_shape is None:
        return DEFAULT_INPUT
    shape = tuple(input_shape)
    ok = len(shape) == 3 and all(d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0) for d in shape[:2])
    if not ok or not isinstance(shape[2], int) or shape[2] < 1:
        raise UsageError(f"`input_shape` must be (height, width, channels) with positive integers (or None for any "
                         f"height/width). Received: input_shape={input_shape!r}. Use e.g. (224, 224, 3) or (None, None, 3).")
    return shape


def _padded_shapes(shape: tuple) -> tuple[tuple, tuple]:
    """(padded, fixed): the backbone's input after padding to a multiple of 32, and a concrete size
    to build it at (zoo's classifiers need one; an unknown side becomes 64) before re-wiring."""
    padded = PadToMultiple(MULTIPLE).compute_output_shape((None, *shape))[1:]
    fixed = tuple(64 if d is None else d for d in padded[:2]) + (padded[2],)
    return padded, fixed


def _rewire(features, padded: tuple):
    """The backbone's feature model on the FCN's padded input (one input, not a list of one)."""
    if tuple(features.inputs[0].shape[1:]) == tuple(padded):
        return keras.Model(features.inputs[0], features.output, name=features.name)
    # A fully convolutional backbone takes any size: the same layers on an input of unknown H/W.
    inp = keras.Input(shape=padded, name="input")
    clone = keras.models.clone_model(features, input_tensors=[inp])
    variable = keras.Model(inp, clone.output, name=features.name)
    variable.set_weights(features.get_weights())
    return variable


def _paper_head(opts: FCNOptions) -> bool:
    """The paper's fc6/fc7 (4096 channels, 7x7), which VGG's classifier can initialise."""
    return opts.head_channels in (None, 4096) and opts.head_kernel in (None, 7)


def _check(variant: str, *, num_classes, input_shape, include_top: bool, classifier_activation,
           options: dict[str, Any]) -> tuple[FCNOptions, int, tuple]:
    """(options, classes, input shape) of a build, every argument checked."""
    if variant not in VARIANTS:
        raise UsageError(f"FCN variant must be one of {', '.join(VARIANTS)}. Received: variant={variant!r}.")
    opts = common.make_options(FCNOptions, options, arch=variant, base=VARIANTS[variant])
    if not include_top:
        raise UsageError(f"{variant} is a dense-prediction model and has no classifier to drop. Received: "
                         f"include_top=False. For feature maps use zoo.build_backbone({opts.backbone!r}).")
    num_classes = common.check_classes(num_classes, include_top=True)
    common.check_activation(classifier_activation)
    shape = _check_input_shape(input_shape)
    if opts.head_channels is not None and opts.head_channels < 1 or opts.head_kernel is not None and opts.head_kernel < 1:
        raise UsageError(f"`head_channels` and `head_kernel` must be positive integers or None. Received: "
                         f"head_channels={opts.head_channels!r}, head_kernel={opts.head_kernel!r}.")
    common.check_dropout(opts.dropout)
    return opts, num_classes, shape


def backbone_request(variant: str = "fcn8s", *, num_classes: int | None = DEFAULT_CLASSES, input_shape=None,
                     include_top: bool = True, include_preprocessing: bool = True, preprocessing=None,
                     classifier_activation="softmax", input_tensor=None, **options) -> BackboneRequest:
    """The backbone zoo.registry builds for `build` (same arguments).

    Without `backbone_weights` the backbone takes the FCN's `preprocessing`; with them, theirs.
    With VGG weights and the paper's head, its classifier is built too, for fc6/fc7.
    """
    opts, _, shape = _check(variant, num_classes=num_classes, input_shape=input_shape, include_top=include_top,
                            classifier_activation=classifier_activation, options=options)
    _, fixed = _padded_shapes(shape)
    weights = opts.backbone_weights
    vgg = opts.backbone.strip().lower().startswith("vgg")
    return BackboneRequest(opts.backbone, weights, fixed, preprocessing=preprocessing if weights is None else None,
                           classifier=weights is not None and vgg and _paper_head(opts))


def _feature(feats: dict, names: tuple[str, str], backbone: str):
    for name in names:
        if name in feats:
            return feats[name]
    raise UsageError(f"Backbone {backbone!r} exposes feature maps {sorted(feats)}, but FCN needs {names[1]!r}. "
                     f"Use a backbone with s8/s16/s32 feature maps, e.g. 'vgg16' or 'resnet18'.")


def _upsample(x, num_classes: int, factor: int, *, name: str, trainable: bool = True, dtype=None):
    layer = layers.Conv2DTranspose(num_classes, 2 * factor, strides=factor, padding="valid", use_bias=False,
                                   kernel_initializer=BilinearUpsampling(), trainable=trainable, dtype=dtype,
                                   name=name)
    out = layer(x)
    # The bilinear kernel is in the layer's weights now; a built-in initializer in its config lets a
    # saved .keras open without zoo (loading restores the weights over it).
    layer.kernel_initializer = keras.initializers.Zeros()
    return out


def _pad_to_multiple(x, *, name: str):
    """PadToMultiple, as a built-in ZeroPadding2D when H and W are known (a portable .keras)."""
    h, w = x.shape[1:3]
    if h is None or w is None:
        return PadToMultiple(MULTIPLE, name=name)(x)
    return layers.ZeroPadding2D(((0, -h % MULTIPLE), (0, -w % MULTIPLE)), name=name)(x)


def _crop_to(x, reference, offset: int, *, name: str, dtype=None):
    """CropTo, as a built-in Cropping2D when both sizes are known (a portable .keras)."""
    (h, w), (rh, rw) = x.shape[1:3], reference.shape[1:3]
    if None in (h, w, rh, rw):
        return CropTo(offset, dtype=dtype, name=name)([x, reference])
    return layers.Cropping2D(((offset, h - offset - rh), (offset, w - offset - rw)), dtype=dtype, name=name)(x)


def _score(x, num_classes: int, *, name: str):
    # Zero-initialised new score layers (paper 4.3): the net starts from the coarser prediction.
    return layers.Conv2D(num_classes, 1, kernel_initializer="zeros", name=name)(x)


def build(variant: str = "fcn8s", *, num_classes: int | None = DEFAULT_CLASSES, input_shape=None,
          include_top: bool = True, include_preprocessing: bool = True, preprocessing=None,
          classifier_activation="softmax", input_tensor=None, backbone_model=None, backbone_classifier=None,
          **options) -> keras.Model:
    """FCN-32s/16s/8s. Input: pixels in [0, 255] with include_preprocessing; output (H, W, classes) per pixel.

    Paper: Long, Shelhamer & Darrell 2015, Fully Convolutional Networks for Semantic Segmentation.
    `backbone_model` is the feature model of `backbone` and `backbone_classifier` its classifier (for
    fc6/fc7), both built by zoo.registry as `backbone_request` asks.
    """
    opts, num_classes, shape = _check(variant, num_classes=num_classes, input_shape=input_shape,
                                      include_top=include_top, classifier_activation=classifier_activation,
                                      options=options)
    if backbone_model is None:
        raise UsageError(f"{variant} needs the feature model of its backbone {opts.backbone!r} (backbone_model=...). "
                         f"Build it with zoo.build({variant!r}) or zoo.models.{variant.upper()[:-1]}s(), which "
                         f"compose the two.")
    padded, _ = _padded_shapes(shape)
    backbone = _rewire(backbone_model, padded)
    if input_tensor is not None and keras.backend.is_keras_tensor(input_tensor):
        inputs = input_tensor
    else:
        inputs = keras.Input(shape=shape, name="input", tensor=input_tensor)
    # Bottom/right padding keeps pixel (i, j) in place; the backbone's own preprocessing follows.
    padded = _pad_to_multiple(inputs, name="pad")
    feats = backbone(padded)
    vgg = "pool5" in feats
    width = opts.head_channels or (4096 if vgg else 512)
    kernel = opts.head_kernel or (7 if vgg else 3)
    top = _feature(feats, ("pool5", "s32"), opts.backbone)
    x = layers.Conv2D(width, kernel, padding="same", activation="relu", name="fc6")(top)
    x = layers.Dropout(opts.dropout, name="drop6")(x)
    x = layers.Conv2D(width, 1, activation="relu", name="fc7")(x)
    x = layers.Dropout(opts.dropout, name="drop7")(x)
    x = _score(x, num_classes, name="score_fr")

    stride = 32
    for skip, keys, up_name in (("pool4", ("pool4", "s16"), "upscore2"), ("pool3", ("pool3", "s8"), "upscore_pool4")):
        if stride == opts.output_stride:
            break
        fine = _score(_feature(feats, keys, opts.backbone), num_classes, name=f"score_{skip}")
        up = _upsample(x, num_classes, 2, name=up_name)
        up = _crop_to(up, fine, 1, name=f"{up_name}_crop")  # kernel 4, stride 2: crop f/2 = 1
        x = layers.Add(name=f"fuse_{skip}")([up, fine])
        stride //= 2
    dtype = common.head_dtype()
    x = _upsample(x, num_classes, stride, name=f"upscore{stride}", trainable=opts.learn_final_upsampling, dtype=dtype)
    x = _crop_to(x, inputs, stride // 2, dtype=dtype, name="score")
    if classifier_activation is not None:
        x = layers.Activation(classifier_activation, dtype=dtype, name="predictions")(x)
    model = keras.Model(inputs, x, name=variant)
    if backbone_classifier is not None and vgg and (width, kernel) == (4096, 7):
        # Paper: fc6/fc7 start from the classifier's fc1/fc2 (the weights file must hold the top).
        load_vgg_classifier(model, backbone_classifier)
    return model


# FCN weights are zoo's own files; the backbone's weights load through the backbone's family.
PRETRAINED = PretrainedSpec()


def _keras_style(variant: str, *, weights, input_tensor, input_shape, classes, classifier_activation,
                 include_preprocessing, include_top, options) -> keras.Model:
    # Always through zoo.build: the registry builds the backbone the FCN stands on.
    if input_tensor is not None:
        options = {**options, "input_tensor": input_tensor}
    return registry_build(variant, weights=weights, num_classes=classes, input_shape=input_shape,
                          include_top=include_top, classifier_activation=classifier_activation,
                          include_preprocessing=include_preprocessing, **options)


def FCN32s(include_top: bool = True, weights=None, input_tensor=None, input_shape=None, classes: int = DEFAULT_CLASSES,
           classifier_activation="softmax", *, include_preprocessing: bool = True, **options) -> keras.Model:
    """keras.applications-style FCN-32s (VGG16 backbone unless `backbone=` is given)."""
    return _keras_style("fcn32s", weights=weights, input_tensor=input_tensor, input_shape=input_shape, classes=classes,
                        classifier_activation=classifier_activation, include_preprocessing=include_preprocessing,
                        include_top=include_top, options=options)


def FCN16s(include_top: bool = True, weights=None, input_tensor=None, input_shape=None, classes: int = DEFAULT_CLASSES,
           classifier_activation="softmax", *, include_preprocessing: bool = True, **options) -> keras.Model:
    """keras.applications-style FCN-16s (VGG16 backbone unless `backbone=` is given)."""
    return _keras_style("fcn16s", weights=weights, input_tensor=input_tensor, input_shape=input_shape, classes=classes,
                        classifier_activation=classifier_activation, include_preprocessing=include_preprocessing,
                        include_top=include_top, options=options)


def FCN8s(include_top: bool = True, weights=None, input_tensor=None, input_shape=None, classes: int = DEFAULT_CLASSES,
          classifier_activation="softmax", *, include_preprocessing: bool = True, **options) -> keras.Model:
    """keras.applications-style FCN-8s (VGG16 backbone unless `backbone=` is given)."""
    return _keras_style("fcn8s", weights=weights, input_tensor=input_tensor, input_shape=input_shape, classes=classes,
                        classifier_activation=classifier_activation, include_preprocessing=include_preprocessing,
                        include_top=include_top, options=options)

preprocess_input = common.preprocess_input_function("fcn")
