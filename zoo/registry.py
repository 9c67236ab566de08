"""The model registry: one declarative table of every architecture zoo can build.

`list_models` and `info` read only this table and the weights manifest (TOML), so they never
import TensorFlow. `build` imports the family module (zoo/models/<family>.py) on demand, hands
zoo.pretrained the row and the family's PretrainedSpec to resolve and load weights, and composes
task models: the backbone a family asks for is built here and passed to the family's builder.
A new family is one file in zoo/models/ and one row below.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from dataclasses import dataclass, field
from typing import Any, Literal

from zoo.errors import UsageError

Task = Literal["classification", "detection", "segmentation", "captioning"]
TASKS: tuple[str, ...] = ("classification", "detection", "segmentation", "captioning")


@dataclass(frozen=True)
class ModelSpec:
    name: str  # registry name, e.g. "resnet50"
    family: str  # module in zoo.models that builds it
    variant: str  # key of the family's VARIANTS table
    task: Task
    input_shape: tuple[int, int, int]  # default input (H, W, C)
    params: int  # parameters at the default input and default classes (checked by tests)
    macs: int  # multiply-accumulates for one image at the default input (checked by tests)
    paper: str
    classes: int = 1000  # default number of classes of the head
    options: dict[str, Any] = field(default_factory=dict)  # default architecture options


_RESNET = "He et al. 2015, Deep Residual Learning for Image Recognition (arXiv 1512.03385)"
_VGG = "Simonyan & Zisserman 2014, Very Deep Convolutional Networks (arXiv 1409.1556)"
_DENSENET = "Huang et al. 2016, Densely Connected Convolutional Networks (arXiv 1608.06993)"
_FCN = "Long, Shelhamer & Darrell 2015, Fully Convolutional Networks for Semantic Segmentation (arXiv 1411.4038)"

# params are torchvision's counts for the classifiers; macs are measured by
# zoo.macs.count_macs on the built model and held to it by tests/test_registry_table.py.
_SPECS: list[ModelSpec] = [
    ModelSpec("lenet5", "lenet", "lenet5", "classification", (32, 32, 1), 61_706, 416_520,
              "LeCun et al. 1998, Gradient-Based Learning Applied to Document Recognition", classes=10),
    ModelSpec("alexnet", "alexnet", "alexnet", "classification", (224, 224, 3), 61_100_840, 714_188_480,
              "Krizhevsky 2014, One weird trick for parallelizing CNNs (arXiv 1404.5997)"),
    ModelSpec("vgg11", "vgg", "vgg11", "classification", (224, 224, 3), 132_863_336, 7_609_090_048, _VGG),
    ModelSpec("vgg13", "vgg", "vgg13", "classification", (224, 224, 3), 133_047_848, 11_308_466_176, _VGG),
    ModelSpec("vgg16", "vgg", "vgg16", "classification", (224, 224, 3), 138_357_544, 15_470_264_320, _VGG),
    ModelSpec("vgg19", "vgg", "vgg19", "classification", (224, 224, 3), 143_667_240, 19_632_062_464, _VGG),
    ModelSpec("vgg11_bn", "vgg", "vgg11_bn", "classification", (224, 224, 3), 132_868_840, 7_609_090_048, _VGG),
    ModelSpec("vgg13_bn", "vgg", "vgg13_bn", "classification", (224, 224, 3), 133_053_736, 11_308_466_176, _VGG),
    ModelSpec("vgg16_bn", "vgg", "vgg16_bn", "classification", (224, 224, 3), 138_365_992, 15_470_264_320, _VGG),
    ModelSpec("vgg19_bn", "vgg", "vgg19_bn", "classification", (224, 224, 3), 143_678_248, 19_632_062_464, _VGG),
    ModelSpec("googlenet", "googlenet", "googlenet", "classification", (224, 224, 3), 6_624_904, 1_498_376_192,
              "Szegedy et al. 2014, Going Deeper with Convolutions (arXiv 1409.4842)"),
    ModelSpec("resnet18", "resnet", "resnet18", "classification", (224, 224, 3), 11_689_512, 1_814_073_344, _RESNET),
    ModelSpec("resnet34", "resnet", "resnet34", "classification", (224, 224, 3), 21_797_672, 3_663_761_408, _RESNET),
    ModelSpec("resnet50", "resnet", "resnet50", "classification", (224, 224, 3), 25_557_032, 4_089_184_256, _RESNET),
    ModelSpec("resnet101", "resnet", "resnet101", "classification", (224, 224, 3), 44_549_160, 7_801_405_440, _RESNET),
    ModelSpec("resnet152", "resnet", "resnet152", "classification", (224, 224, 3), 60_192_808, 11_513_626_624, _RESNET),
    ModelSpec("densenet121", "densenet", "densenet121", "classification", (224, 224, 3), 7_978_856, 2_834_161_664, _DENSENET),
    ModelSpec("densenet169", "densenet", "densenet169", "classification", (224, 224, 3), 14_149_480, 3_359_843_328, _DENSENET),
    ModelSpec("densenet201", "densenet", "densenet201", "classification", (224, 224, 3), 20_013_928, 4_291_365_888, _DENSENET),
    ModelSpec("yolo_lite", "yolo_lite", "yolo_lite", "detection", (224, 224, 3), 572_317, 240_004_352,
              "Huang, Pedoeem & Chen 2018, YOLO-LITE (arXiv 1811.05588)", classes=20),
    ModelSpec("fcn32s", "fcn", "fcn32s", "segmentation", (224, 224, 3), 136_152_917, 21_296_701_440, _FCN, classes=21),
    ModelSpec("fcn16s", "fcn", "fcn16s", "segmentation", (224, 224, 3), 134_815_994, 21_299_154_576, _FCN, classes=21),
    ModelSpec("fcn8s", "fcn", "fcn8s", "segmentation", (224, 224, 3), 134_489_759, 21_304_752_336, _FCN, classes=21),
    # show_and_tell: resnet50 encoder + 512/512 LSTM decoder over a 10,000-word vocabulary; params
    # count all weights (the encoder is frozen by default); macs = one image and a 20-token caption.
    ModelSpec("show_and_tell", "show_and_tell", "show_and_tell", "captioning", (224, 224, 3), 36_959_440, 4_234_625_024,
              "Vinyals et al. 2015, Show and Tell: A Neural Image Caption Generator (arXiv 1411.4555)", classes=0),
    # show_attend_tell: soft attention over resnet50's s16 map (14 x 14 x 1024, the backbone cut there),
    # 512/512/512 LSTM, attention MLP and deep output over 10,000 words; macs as show_and_tell's.
    ModelSpec("show_attend_tell", "show_attend_tell", "show_attend_tell", "captioning", (224, 224, 3), 25_645_266,
              3_594_995_712,
              "Xu et al. 2015, Show, Attend and Tell: Neural Image Caption Generation with Visual Attention "
              "(arXiv 1502.03044)", classes=0),
]

REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}


def get_spec(name: str) -> ModelSpec:
    """The registry row for `name`; an unknown name raises with the closest matches."""
    if not isinstance(name, str):
        raise UsageError(f"A model name must be a string. Received: {name!r}.")
    key = name.strip().lower().replace("-", "_")
    if key in REGISTRY:
        return REGISTRY[key]
    close = difflib.get_close_matches(key, REGISTRY, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UsageError(
        f"Unknown model {name!r}.{hint} Run `zoo list` to see the {len(REGISTRY)} models zoo can build."
    )


def _weight_tags(name: str) -> list[str]:
    from zoo.pretrained.manifest import tags_for  # reads TOML only

    return tags_for(name)


def default_weights(name: str, *, warn: bool = False) -> str | None:
    """The one rule for the weights a model gets when none are named: "imagenet" if the model
    has it, else its first manifest tag, else None (random weights; with `warn`, a warning)."""
    spec = get_spec(name)
    tags = _weight_tags(spec.name)
    if not tags:
        if warn:
            import warnings

            warnings.warn(f"{spec.name} has no pretrained weights: using random weights. "
                          f"Pass --weights PATH, or a model directory from `zoo finetune`.", stacklevel=3)
        return None
    return "imagenet" if "imagenet" in tags else tags[0]


def list_models(pattern: str | None = None, *, task: str | None = None, pretrained: bool | None = None) -> list[str]:
    """Registry names, sorted, filtered by an fnmatch `pattern` ("resnet*"), `task` and `pretrained`.

    Args:
        pattern: fnmatch pattern on the name; a pattern without wildcards matches as a substring.
        task: keep only models of this task.
        pretrained: True keeps models with at least one weights tag, False those with none.
    """
    if task is not None and task not in TASKS:
        raise UsageError(f"`task` must be one of {', '.join(TASKS)}. Received: task={task!r}.")
    names = sorted(REGISTRY)
    if pattern:
        pat = pattern.lower()
        if not any(ch in pat for ch in "*?["):
            pat = f"*{pat}*"
        names = [n for n in names if fnmatch.fnmatchcase(n, pat)]
    if task is not None:
        names = [n for n in names if REGISTRY[n].task == task]
    if pretrained is not None:
        names = [n for n in names if bool(_weight_tags(n)) == pretrained]
    return names


def info(name: str) -> dict[str, Any]:
    """name, family, task, params, macs, input_shape, weights (tags with metadata), paper."""
    from zoo.pretrained.manifest import rows_for

    spec = get_spec(name)
    return {
        "name": spec.name,
        "family": spec.family,
        "task": spec.task,
        "params": spec.params,
        "macs": spec.macs,
        "input_shape": list(spec.input_shape),
        "classes": spec.classes,
        "weights": rows_for(spec.name),
        "paper": spec.paper,
    }


def family_module(spec: ModelSpec):
    return importlib.import_module(f"zoo.models.{spec.family}")


def resolve_weights(name: str, weights, *, include_top: bool = True, input_shape: tuple[int, ...] | None = None):
    """zoo.pretrained.resolve_weights for registry model `name`: a WeightsSource (tag, path or URL;
    fetched and verified when needed). zoo.pretrained receives the row and the family's PretrainedSpec."""
    from zoo import pretrained

    spec = get_spec(name)
    return pretrained.resolve_weights(spec, weights, pretrained=family_module(spec).PRETRAINED,
                                      include_top=include_top, input_shape=input_shape)


def import_weights(path, *, arch: str, tag: str, force: bool = False) -> dict[str, Any]:
    """`zoo weights import`: copy a weights file for registry model `arch` into the cache as ARCH.TAG."""
    from zoo.pretrained.cache import import_weights as impl

    spec = get_spec(arch)
    return impl(path, spec=spec, pretrained=family_module(spec).PRETRAINED, tag=tag, force=force)


def build(
    name: str,
    *,
    weights: str | None = None,
    num_classes: int | None = None,
    input_shape: tuple[int, ...] | None = None,
    include_top: bool = True,
    include_preprocessing: bool = True,
    classifier_activation: str | None = "softmax",
    **arch_options: Any,
):
    """Build registry model `name`, optionally with weights (a manifest tag or a file path).

    The weights choose the architecture options they need (e.g. Keras's ResNet v1 versus
    torchvision's v1.5); an explicit option that conflicts with them is an error. With
    `num_classes` different from the weights' classes the backbone is loaded and the head is new.
    A task model (detector, segmenter, captioner) is composed here: its backbone is built first
    (`backbone=NAME`, `backbone_weights=...`) and handed to the family's builder.
    """
    return _build(get_spec(name), weights=weights, num_classes=num_classes, input_shape=input_shape,
                  include_top=include_top, include_preprocessing=include_preprocessing,
                  classifier_activation=classifier_activation, **arch_options)


def _build(spec: ModelSpec, *, weights, num_classes, input_shape, include_top, include_preprocessing,
           classifier_activation, preprocessing=None, **arch_options: Any):
    """build() for a row; `preprocessing` (a mode or dict) applies when no weights bring their own."""
    if weights is not None and str(weights).lower() == "none":
        weights = None
    source = None
    if weights is not None:
        source = resolve_weights(spec.name, weights, include_top=include_top, input_shape=input_shape)
        for key, value in source.arch_options.items():
            if key in arch_options and arch_options[key] != value:
                raise UsageError(
                    f"The weights {weights!r} need {key}={value!r}, but {key}={arch_options[key]!r} was given. "
                    f"Drop `{key}` to use these weights, or pass other weights."
                )
        arch_options = {**arch_options, **source.arch_options}
        preprocessing = source.preprocessing
    family = family_module(spec)
    kwargs = dict(
        num_classes=num_classes if num_classes is not None else (source.num_classes if source else spec.classes),
        input_shape=input_shape,
        include_top=include_top,
        include_preprocessing=include_preprocessing,
        preprocessing=preprocessing,
        classifier_activation=classifier_activation,
        **arch_options,
    )
    model = family.build(spec.variant, **_backbone_parts(spec, family, kwargs), **kwargs)
    if source is not None:
        from zoo.pretrained import load_weights

        load_weights(model, source)
    from zoo.modeldir import attach_meta, meta_for_build

    attach_meta(model, meta_for_build(spec, model, source))
    return model


def _backbone_parts(spec: ModelSpec, family, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The backbone a task family asks for (its `backbone_request`, given the build's arguments),
    built here as a feature model, so that zoo.models never builds another registry model."""
    ask = getattr(family, "backbone_request", None)
    request = ask(spec.variant, **kwargs) if ask is not None else None
    if request is None:
        return {}
    parts = {"backbone_model": _build_backbone(
        get_spec(request.name), weights=request.weights, input_shape=request.input_shape,
        include_preprocessing=kwargs["include_preprocessing"], preprocessing=request.preprocessing)}
    if request.classifier:
        parts["backbone_classifier"] = build(request.name, weights=request.weights, classifier_activation=None)
    return parts


def build_backbone(name: str, *, weights: str | None = None, input_shape: tuple[int, ...] | None = None,
                   include_preprocessing: bool = True, **arch_options: Any):
    """A backbone whose outputs are a dict of named feature maps by stride ("s4".."s32", VGG also
    "pool3".."pool5"), for the detection, segmentation and captioning heads."""
    return _build_backbone(get_spec(name), weights=weights, input_shape=input_shape,
                           include_preprocessing=include_preprocessing, **arch_options)


def _build_backbone(spec: ModelSpec, *, weights, input_shape, include_preprocessing, preprocessing=None,
                    **arch_options: Any):
    if spec.task != "classification":
        raise UsageError(f"A backbone must be a classification model. Received: {spec.name!r} ({spec.task}). "
                         f"Use e.g. 'resnet18' or 'vgg16'.")
    model = _build(spec, weights=weights, num_classes=None, input_shape=input_shape, include_top=False,
                   include_preprocessing=include_preprocessing, classifier_activation="softmax",
                   preprocessing=preprocessing, **arch_options)
    return family_module(spec).feature_model(model)
