"""zoo: a Keras 3 model zoo and transfer-learning toolkit.

Importing zoo must stay instant: it never imports TensorFlow or Keras. Every public function
below is resolved lazily from the module that implements it.
"""

from __future__ import annotations

import importlib

from zoo import tf_settings

tf_settings.apply()  # before any zoo module can import TensorFlow (oneDNN on; see zoo.tf_settings)

__version__ = "0.1.0"

# public name -> "module:attribute"; the module is imported on first use only.
_API = {
    "list_models": "zoo.registry:list_models",
    "info": "zoo.registry:info",
    "build": "zoo.registry:build",
    "build_backbone": "zoo.registry:build_backbone",
    "load_model": "zoo.modeldir:load_model",
    "predict": "zoo.inference:predict",
    "finetune": "zoo.training.finetune:finetune",
    "evaluate": "zoo.evaluation:evaluate",
    "export": "zoo.exporting:export",
    "inference_model": "zoo.optimize:inference_model",
    "freeze": "zoo.training.freeze:freeze",
    "lr_find": "zoo.training.lr_find:lr_find",
    "replace_head": "zoo.training.freeze:replace_head",
    "bench": "zoo.benchmark:bench",
    "tune": "zoo.training.tune:tune",
    "explain": "zoo.explaining:explain",
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str):
    target = _API.get(name)
    if target is None:
        raise AttributeError(f"module 'zoo' has no attribute {name!r}")
    module_name, attr = target.split(":")
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value


def __dir__():
    return __all__


def _registry_build(name: str, /, **kwargs):
    from zoo.registry import build

    return build(name, **kwargs)


def _read_labels(name: str):
    from zoo.pretrained.manifest import read_labels

    return read_labels(name)


# zoo.models is the bottom layer and imports nothing above it; its keras.applications-style
# functions (ResNet50(weights=...), FCN8s(), ...) reach the registry through this hook, installed
# here because Python runs this file before any zoo.models module.
from zoo.models import spec as _models_spec  # noqa: E402  (no Keras: dataclasses only)

_models_spec.install_registry_build(_registry_build)
_models_spec.install_labels_reader(_read_labels)
