"""Architectures only: one file per family, Keras-style builders with the keras.applications
signature plus `include_preprocessing`. Nothing here imports the rest of zoo except zoo.errors.

A family module holds its blocks, its builder `build(variant, ...)`, `feature_model(model)`, its
VARIANTS table and PRETRAINED (zoo.models.spec.PretrainedSpec: how zoo.pretrained reads weights
made for it); a task model built on a backbone also has `backbone_request`. Adding a family is
that file plus one row in zoo/registry.py (and a line below for its Keras-style function names).

`from zoo.models import ResNet50` resolves lazily so `import zoo.models` stays light.
"""

from __future__ import annotations

import importlib
import pkgutil

# Keras-style builder name -> family module (each module defines the function).
_BUILDERS = {
    "LeNet5": "lenet",
    "AlexNet": "alexnet",
    "VGG11": "vgg", "VGG13": "vgg", "VGG16": "vgg", "VGG19": "vgg",
    "VGG11BN": "vgg", "VGG13BN": "vgg", "VGG16BN": "vgg", "VGG19BN": "vgg",
    "GoogLeNet": "googlenet",
    "ResNet18": "resnet", "ResNet34": "resnet", "ResNet50": "resnet", "ResNet101": "resnet", "ResNet152": "resnet",
    "DenseNet121": "densenet", "DenseNet169": "densenet", "DenseNet201": "densenet",
    "YOLOLite": "yolo_lite",
    "FCN32s": "fcn", "FCN16s": "fcn", "FCN8s": "fcn",
    "ShowAndTell": "show_and_tell",
    "ShowAttendTell": "show_attend_tell",
}

# Every module of this package but the shared ones is a family.
FAMILIES = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in ("common", "spec")))


def __getattr__(name: str):
    family = _BUILDERS.get(name)
    if family is None:
        raise AttributeError(f"module 'zoo.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"zoo.models.{family}"), name)


def custom_objects() -> dict:
    """Every custom Keras class of every family (each module may define CUSTOM_OBJECTS)."""
    objects: dict = {}
    for family in FAMILIES + ("common",):
        objects.update(getattr(importlib.import_module(f"zoo.models.{family}"), "CUSTOM_OBJECTS", {}))
    return objects
