"""What a family module declares for the layers above it, so that they need no family code.

Every zoo/models/<family>.py defines
    PRETRAINED = PretrainedSpec(...)   how zoo.pretrained reads weights files made for it;
and a task model built on a backbone (detector, segmenter, captioner) also defines
    backbone_request(variant, *, input_shape=None, preprocessing=None, **options) -> BackboneRequest | None
    build(variant, ..., backbone_model=<feature model>, ...)
so that zoo.registry builds the backbone and hands its feature model over: the family never
imports the registry. Nothing here imports Keras (zoo.registry reads these while resolving).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Sequence

# What a bare weights file is, for `file_defaults`: keras.applications HDF5, or a torchvision /
# timm state dict (.safetensors, .pth).
FileKind = Literal["keras", "torch"]

# (torch module paths, state dict, model) -> {torch module path: zoo layer name}
TorchMapper = Callable[[list[str], Mapping[str, Any], Any], dict[str, str]]


@dataclass(frozen=True)
class PretrainedSpec:
    """How zoo.pretrained loads weights made for one family (the default: zoo's own files only)."""

    # File kind -> (preprocessing mode, architecture options) a bare file of that kind implies, e.g.
    # a keras.applications ResNet is Keras's v1 on "caffe" input. A kind absent here loads with the
    # family's default preprocessing and options.
    file_defaults: Mapping[FileKind, tuple[str, Mapping[str, Any]]] = field(default_factory=dict)
    # Torch module paths -> zoo layer names; None: torchvision / timm files do not load into this family.
    torch_mapper: TorchMapper | None = None
    # State-dict key fix-ups applied before mapping (old checkpoints that name modules differently).
    torch_fixups: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # Architecture options a zoo .weights.h5 implies, from {Keras layer key: [tensor shapes]} of the
    # file (e.g. ResNet convolutions with a bias are Keras's v1); None: the file implies none.
    recognise: Callable[[Mapping[str, Sequence[tuple[int, ...]]]], dict[str, Any]] | None = None


def per_module(name_of: Callable[[str], str | None]) -> TorchMapper:
    """A TorchMapper from a function of one torch module path (None: the module has no zoo layer)."""

    def mapper(modules: list[str], state: Mapping[str, Any], model: Any) -> dict[str, str]:
        return {m: n for m in modules if (n := name_of(m)) is not None}

    return mapper


@dataclass(frozen=True)
class BackboneRequest:
    """The classification model a task model stands on; zoo.registry builds it as a feature model."""

    name: str  # registry name of a classification model ("resnet18")
    weights: str | None  # its weights (tag or path); None: random initialisation
    input_shape: tuple[int, int, int]  # the input the feature model is built for
    preprocessing: dict[str, Any] | str | None = None  # without weights: its preprocessing (None: the family's)
    classifier: bool = False  # also build it with its classifier and these weights (FCN's fc6/fc7 from VGG's)


# --------------------------------------------------------------------------- keras-style functions

# The keras.applications-style functions (ResNet50(weights="imagenet"), FCN8s(), ...) resolve
# weights and compose backbones, which is the registry's job, one layer above this package.
# `import zoo` (always run before zoo.models is imported) installs the registry's build here, so
# those functions reach it without the architecture code importing what imports it.
_registry_build: Callable[..., Any] | None = None


def install_registry_build(build: Callable[..., Any]) -> None:
    global _registry_build
    _registry_build = build


def registry_build(name: str, /, **kwargs: Any):
    """zoo.build(name, **kwargs), as installed by `import zoo`."""
    if _registry_build is None:  # only when zoo/__init__.py was bypassed
        raise RuntimeError("zoo.registry's build is not installed: import zoo before calling a zoo.models builder.")
    return _registry_build(name, **kwargs)


# decode_predictions in the family modules reads the shipped label lists (weights/labels/), which
# zoo.pretrained locates; `import zoo` installs that reader here for the same reason as above.
_read_labels: Callable[[str], list[str] | None] | None = None


def install_labels_reader(read: Callable[[str], list[str] | None]) -> None:
    global _read_labels
    _read_labels = read


def read_labels(name: str) -> list[str] | None:
    """The shipped label list `name` ("imagenet", "fashion_mnist"), as installed by `import zoo`."""
    if _read_labels is None:  # only when zoo/__init__.py was bypassed
        raise RuntimeError("zoo's label reader is not installed: import zoo before calling decode_predictions.")
    return _read_labels(name)
