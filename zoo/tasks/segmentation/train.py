"""The model a segmentation run starts from: a registry FCN with a new head for the data's
classes, or a model directory / keras.Model to continue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.errors import UsageError

# The head options of zoo.models.fcn that SegmentationOptions passes on when set.
FCN_OPTIONS = ("head_channels", "head_kernel", "dropout", "learn_final_upsampling")


def continue_model(arch, labels: list[str]):
    """(model, metadata) of a model directory, .keras file or keras.Model with as many classes as `labels`."""
    import zoo
    from zoo.modeldir import get_meta

    model = zoo.load_model(arch) if isinstance(arch, str) else arch
    old = get_meta(model)
    if int(model.output_shape[-1]) != len(labels):
        raise UsageError(f"The model predicts {model.output_shape[-1]} classes but the data has {len(labels)}. "
                         f"Start from a registry name (e.g. fcn8s) to train a new head.")
    return model, {**old, "finetuned_from": str(arch) if isinstance(arch, str) else old.get("arch")}


def new_fcn(name: str, labels: list[str], opts):
    """(model, metadata) of registry FCN `name` for `labels` at opts.input_shape, on opts.backbone."""
    import zoo
    from zoo.modeldir import get_meta
    from zoo.registry import get_spec

    spec = get_spec(name)
    if spec.task != "segmentation":
        raise UsageError(f"{name!r} is a {spec.task} model; segmentation data needs fcn32s, fcn16s or fcn8s.")
    topts = opts.task_options
    backbone = opts.backbone or spec.options.get("backbone", "vgg16")
    fcn_weights, backbone_weights = choose_weights(spec.name, backbone, opts.weights, topts.backbone_weights)
    head = {key: getattr(topts, key) for key in FCN_OPTIONS if getattr(topts, key) is not None}
    if backbone_weights is not None:
        head["backbone_weights"] = backbone_weights
    model = zoo.build(spec.name, weights=fcn_weights, num_classes=len(labels), input_shape=tuple(opts.input_shape),
                      backbone=backbone, **head)
    meta = get_meta(model)
    meta["backbone"] = backbone
    if backbone_weights is not None:
        meta.setdefault("weights", {"origin": f"{backbone}:{backbone_weights}"})
    return model, meta


def choose_weights(name: str, backbone: str, weights: Any, backbone_weights: str | None) -> tuple[Any, str | None]:
    """(FCN weights, backbone weights) for --weights: "auto" = the FCN's default weights, else the
    backbone's (zoo.registry.default_weights for both); a tag of the FCN or a path loads the whole
    FCN; any other tag is the backbone's (`--weights imagenet`); None / "none" = random. The
    `backbone_weights` option, when given, always names the backbone's."""
    from zoo.pretrained.manifest import tags_for
    from zoo.registry import default_weights

    if weights is None or str(weights).lower() == "none":
        return None, backbone_weights
    if weights == "auto":
        own = default_weights(name)
        if own is None and backbone_weights is None:
            backbone_weights = default_weights(backbone)
        return own, backbone_weights
    if weights in tags_for(name) or Path(str(weights)).exists():
        return weights, backbone_weights
    return None, backbone_weights or weights
