"""YOLO-LITE: a real-time detector for non-GPU computers (Huang, Pedoeem & Chen 2018, arXiv 1811.05588).

"Trial 3 no batch norm": six 3x3 convolutions (16, 32, 64, 128, 128 filters, each followed by a
2x2 max-pool, then 256) with leaky ReLU, and a 1x1 convolution to anchors x (5 + classes). At
224 px with 20 classes and 5 anchors the output is 7x7x125 and the model has 572,317 parameters.

The output is the raw YOLOv2 head, (grid, grid, anchors * (5 + classes)), each anchor's slice
being (tx, ty, tw, th, objectness, class logits...). Decoding, anchors and the loss live in
the detection task (zoo.tasks); the model itself is architecture only.

`backbone="resnet18"` (any zoo classification model) replaces the YOLO-LITE trunk by that
backbone's stride-32 feature map ("s32") followed by the same 3x3x256 convolution and head;
zoo.registry builds the backbone (`backbone_request`) and passes its feature model to `build`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from zoo.errors import UsageError
from zoo.models.spec import BackboneRequest, PretrainedSpec, registry_build

# YOLOv2's VOC anchors (darknet yolo-voc.cfg, in 13x13 grid units) as fractions of the input
# size, so they hold at any input size. Training on user data replaces them by k-means anchors.
VOC_ANCHORS: tuple[tuple[float, float], ...] = tuple(
    (w / 13.0, h / 13.0) for w, h in ((1.3221, 1.73145), (3.19275, 4.00944), (5.05587, 8.09892),
                                      (9.47112, 4.84053), (11.2364, 10.0071))
)


@dataclass(frozen=True)
class YOLOLiteOptions:
    input_size: int = 224  # square input side in pixels; a multiple of 32 (the head's stride)
    classes: int = 20  # object classes (VOC: 20)
    anchors: tuple[tuple[float, float], ...] = VOC_ANCHORS  # (w, h) as fractions of the input side
    batch_norm: bool = False  # trial 3 of the paper has none; True adds BN after each 3x3 conv
    filters: tuple[int, ...] = (16, 32, 64, 128, 128, 256)  # the trunk's 3x3 convolutions
    backbone: str | None = None  # a zoo classification model whose "s32" map replaces the trunk
    backbone_weights: str | None = None  # weights tag or path for that backbone


VARIANTS: dict[str, YOLOLiteOptions] = {
    "yolo_lite": YOLOLiteOptions(),
}


def _check(opts: YOLOLiteOptions) -> YOLOLiteOptions:
    if not isinstance(opts.input_size, int) or opts.input_size < 32 or opts.input_size % 32:
        raise UsageError(f"`input_size` must be a positive multiple of 32 (the head's stride). "
                         f"Received: input_size={opts.input_size!r}. Try 224, 320 or 416.")
    if not isinstance(opts.classes, int) or opts.classes < 1:
        raise UsageError(f"`classes` must be an integer >= 1. Received: classes={opts.classes!r}.")
    try:
        anchors = tuple((float(w), float(h)) for w, h in opts.anchors)
    except (TypeError, ValueError):
        raise UsageError(f"`anchors` must be a list of (width, height) pairs as fractions of the input. "
                         f"Received: anchors={opts.anchors!r}.") from None
    if not anchors or any(not (0 < v <= 16) for pair in anchors for v in pair):
        raise UsageError(f"`anchors` must be a non-empty list of positive (width, height) fractions of the "
                         f"input. Received: anchors={opts.anchors!r}.")
    return replace(opts, anchors=anchors)


def conv_block(x, filters: int, *, kernel: int = 3, batch_norm: bool, name: str):
    """3x3 convolution (+ batch norm) + leaky ReLU (0.1, as darknet)."""
    import keras

    x = keras.layers.Conv2D(filters, kernel, padding="same", use_bias=not batch_norm, name=f"{name}_conv")(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.99, name=f"{name}_bn")(x)
    return keras.layers.LeakyReLU(negative_slope=0.1, name=f"{name}_leaky")(x)


def yolo_lite(opts: YOLOLiteOptions, *, include_top: bool = True, include_preprocessing: bool = True,
              preprocessing: dict[str, Any] | None = None, backbone_model=None, name: str = "yolo_lite"):
    """Build YOLO-LITE from options (see the module docstring).

    `backbone_model`: with `opts.backbone`, that backbone's feature model at (input_size, input_size, 3)
    (zoo.registry builds it; see `backbone_request`), whose "s32" map replaces the trunk.
    """
    import keras

    opts = _check(opts)
    size = opts.input_size
    if opts.backbone is not None:
        if backbone_model is None:
            raise UsageError(f"yolo_lite with backbone={opts.backbone!r} needs that backbone's feature model "
                             f"(backbone_model=...). Build it with zoo.build('yolo_lite', backbone={opts.backbone!r}), "
                             f"which composes the two.")
        inputs = backbone_model.inputs[0]
        x = backbone_model(inputs)["s32"]
        x = conv_block(x, opts.filters[-1], batch_norm=opts.batch_norm, name="head1")
    else:
        from zoo.models.common import model_input

        # Pixels in [0, 255] scaled to [0, 1], as darknet feeds its networks.
        inputs, x, _ = model_input((size, size, 3), include_preprocessing=include_preprocessing,
                                   preprocessing=preprocessing, default_preprocessing="unit")
        for i, filters in enumerate(opts.filters):
            x = conv_block(x, filters, batch_norm=opts.batch_norm, name=f"conv{i + 1}")
            if i < 5:
                x = keras.layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    if include_top:
        outputs = len(opts.anchors) * (5 + opts.classes)
        from zoo.models.common import head_dtype

        # float32 head under mixed precision: the loss and decoding exponentiate these logits.
        x = keras.layers.Conv2D(outputs, 1, dtype=head_dtype(), name="detect_conv")(x)
    return keras.Model(inputs, x, name=name)


def make_options(variant: str, *, num_classes: int | None = None, input_shape: tuple[int, ...] | None = None,
                 **options: Any) -> YOLOLiteOptions:
    """The VARIANTS row updated by the build arguments and `options`, checked."""
    if variant not in VARIANTS:
        raise UsageError(f"Unknown yolo_lite variant {variant!r}; known: {', '.join(VARIANTS)}.")
    fields = set(YOLOLiteOptions.__dataclass_fields__)
    unknown = sorted(set(options) - fields)
    if unknown:
        raise UsageError(f"Unknown yolo_lite option(s) {unknown}. Known options: {', '.join(sorted(fields))}.")
    if input_shape is not None:
        shape = tuple(input_shape)
        if len(shape) != 3 or shape[0] != shape[1] or shape[2] != 3:
            raise UsageError(f"yolo_lite takes a square RGB input (S, S, 3) with S a multiple of 32. "
                             f"Received: input_shape={input_shape!r}.")
        options.setdefault("input_size", shape[0])
    if num_classes is not None:
        options.setdefault("classes", num_classes)
    return _check(replace(VARIANTS[variant], **options))


def backbone_request(variant: str, *, num_classes: int | None = None, input_shape: tuple[int, ...] | None = None,
                     include_top: bool = True, include_preprocessing: bool = True, preprocessing=None,
                     classifier_activation: str | None = None, **options: Any) -> BackboneRequest | None:
    """The backbone zoo.registry builds for `build` (same arguments): `backbone` at the input size, or None."""
    opts = make_options(variant, num_classes=num_classes, input_shape=input_shape, **options)
    if opts.backbone is None:
        return None
    return BackboneRequest(opts.backbone, opts.backbone_weights, (opts.input_size, opts.input_size, 3))


def build(variant: str, *, num_classes: int | None = None, input_shape: tuple[int, ...] | None = None,
          include_top: bool = True, include_preprocessing: bool = True, preprocessing: dict[str, Any] | None = None,
          classifier_activation: str | None = None, backbone_model=None, **options: Any):
    """The family contract used by zoo.build: a VARIANTS row updated by the arguments and `options`.

    `classifier_activation` is ignored: the head outputs raw YOLOv2 logits, decoded by zoo.tasks.detection.
    `backbone_model` is the feature model of `backbone` that zoo.registry built (see `backbone_request`).
    """
    opts = make_options(variant, num_classes=num_classes, input_shape=input_shape, **options)
    return yolo_lite(opts, include_top=include_top, include_preprocessing=include_preprocessing,
                     preprocessing=preprocessing, backbone_model=backbone_model, name=variant)


# Trained from scratch or on a backbone: zoo's own .weights.h5 files only.
PRETRAINED = PretrainedSpec()


def YOLOLite(*, include_top: bool = True, weights: str | None = None, input_shape: tuple[int, ...] | None = None,
             classes: int = 20, include_preprocessing: bool = True, anchors=VOC_ANCHORS, batch_norm: bool = False,
             backbone: str | None = None, **kwargs: Any):
    """YOLO-LITE with the keras.applications-style signature (arXiv 1811.05588).

    Args:
        include_top: with the 1x1 detection head; False returns the 3x3x256 feature map.
        weights: None, a weights tag of the manifest or a path (through zoo.build).
        input_shape: (S, S, 3), S a multiple of 32 (default 224).
        classes: object classes of the head.
        anchors: (w, h) pairs as fractions of the input side.
        batch_norm: batch norm after each 3x3 convolution (not in the paper's trial 3).
        backbone: a zoo classification model whose stride-32 features replace the trunk.
    Returns:
        A keras.Model whose output is (S/32, S/32, len(anchors) * (5 + classes)) raw logits.
    """
    return registry_build("yolo_lite", weights=weights, num_classes=classes, input_shape=input_shape,
                          include_top=include_top, include_preprocessing=include_preprocessing,
                          anchors=anchors, batch_norm=batch_norm, backbone=backbone, **kwargs)


def feature_model(model):
    """YOLO-LITE is a detector, not a backbone for other heads."""
    raise UsageError("yolo_lite cannot serve as a backbone: pass a classification model such as 'resnet18'.")
