"""A family is one file: every family module declares what zoo.registry and zoo.pretrained need,
and a new family (one module + one registry row) builds, composes and loads weights in torch
naming without a line changed in zoo.pretrained."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from zoo.registry import REGISTRY

FAMILIES = sorted({spec.family for spec in REGISTRY.values()})


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_declares_what_the_layers_above_need(family):
    from zoo.models.spec import PretrainedSpec
    from zoo.pretrained.presets import PREPROCESSING
    from zoo.registry import family_module

    rows = [spec for spec in REGISTRY.values() if spec.family == family]
    module = family_module(rows[0])
    assert callable(module.build)
    if rows[0].task == "classification":  # a backbone for the task models: named feature maps
        assert callable(module.feature_model)
    assert {spec.variant for spec in rows} <= set(module.VARIANTS)
    declared = module.PRETRAINED
    assert isinstance(declared, PretrainedSpec)
    for kind, (mode, options) in declared.file_defaults.items():
        assert kind in ("keras", "torch") and mode in PREPROCESSING and isinstance(dict(options), dict)
    if declared.file_defaults.get("torch"):
        assert declared.torch_mapper is not None, f"{family} takes torch files but maps no torch names"
    # A model standing on a backbone says which one, so the registry builds it (models import no registry).
    assert callable(getattr(module, "backbone_request", None)) == (rows[0].task != "classification")


def test_every_module_of_zoo_models_is_a_registered_family():
    import zoo.models

    assert sorted(zoo.models.FAMILIES) == FAMILIES


NEW_FAMILY = '''
"""TinyNet: one strided convolution and a classifier (written by tests/test_families.py)."""

import keras

from zoo.models import common
from zoo.models.spec import PretrainedSpec, per_module

VARIANTS = {"tinynet": {}}


def build(variant="tinynet", *, num_classes=3, input_shape=None, include_top=True, include_preprocessing=True,
          preprocessing=None, classifier_activation="softmax", **options):
    shape = common.check_input_shape(input_shape, default=(8, 8, 3), min_size=2, arch=variant,
                                     include_top=include_top, fixed_top=False)
    inputs, x, _ = common.model_input(shape, include_preprocessing=include_preprocessing,
                                      preprocessing=preprocessing, default_preprocessing="unit")
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="stem")(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = common.predictions(x, num_classes, classifier_activation)
    return common.make_model(inputs, x, name=variant)


def feature_model(model):
    return common.feature_model(model, {"s2": "stem"})


PRETRAINED = PretrainedSpec(file_defaults={"torch": ("torch", {})},
                            torch_mapper=per_module({"conv": "stem", "fc": "predictions"}.get))
'''


@pytest.fixture
def tinynet(tmp_path, monkeypatch):
    """zoo/models/tinynet.py and its registry row, without touching the source tree."""
    import zoo.registry

    path = tmp_path / "tinynet.py"
    path.write_text(NEW_FAMILY, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("zoo.models.tinynet", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "zoo.models.tinynet", module)
    spec.loader.exec_module(module)
    row = zoo.registry.ModelSpec("tinynet", "tinynet", "tinynet", "classification", (8, 8, 3), 127, 0, "a test", classes=3)
    monkeypatch.setitem(zoo.registry.REGISTRY, "tinynet", row)
    return row


def test_a_new_family_is_one_file_and_one_row(tinynet, tmp_path):
    import zoo
    from safetensors.numpy import save_file

    assert "tinynet" in zoo.list_models() and zoo.info("tinynet")["family"] == "tinynet"
    model = zoo.build("tinynet")
    assert model.count_params() == tinynet.params
    # A torchvision-named state dict loads through the family's declared mapper and file defaults.
    rng = np.random.default_rng(0)
    state = {"conv.weight": rng.normal(size=(4, 3, 3, 3)).astype("float32"), "conv.bias": np.ones(4, "float32"),
             "fc.weight": rng.normal(size=(3, 4)).astype("float32"), "fc.bias": np.zeros(3, "float32")}
    save_file(state, str(tmp_path / "tiny.safetensors"))
    loaded = zoo.build("tinynet", weights=str(tmp_path / "tiny.safetensors"))
    assert sorted(loaded._zoo_load_report.loaded) == ["predictions", "stem"]
    np.testing.assert_array_equal(loaded.get_layer("stem").kernel.numpy(), state["conv.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(loaded.get_layer("predictions").kernel.numpy(), state["fc.weight"].T)
    assert loaded.get_layer("preprocess").mode == "torch"  # the family's default for torch files
    # And it serves as a backbone of the task models the registry composes.
    features = zoo.build_backbone("tinynet", input_shape=(32, 32, 3))
    assert set(features.output) == {"s2"}
