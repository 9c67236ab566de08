"""Exact parameter counts (trainable = torchvision's count) for every variant, from issue 2.

Models are built, never run, and each is built once."""

import math

import pytest

ISSUE_PARAMS = {
    "lenet5": 61_706, "alexnet": 61_100_840, "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544,
    "vgg19": 143_667_240, "vgg11_bn": 132_868_840, "googlenet": 6_624_904, "resnet18": 11_689_512,
    "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160, "resnet152": 60_192_808,
    "densenet121": 7_978_856, "densenet169": 14_149_480, "densenet201": 20_013_928,
}
# torchvision's vgg*_bn counts, beyond the one the issue lists.
TORCHVISION_BN = {"vgg13_bn": 133_053_736, "vgg16_bn": 138_365_992, "vgg19_bn": 143_678_248}
KERAS_V1_PARAMS = {"resnet50": 25_583_592, "resnet101": 44_601_832, "resnet152": 60_268_520}


def trainable_params(model) -> int:
    return sum(math.prod(w.shape) for w in model.trainable_weights)


def _classification_names():
    from zoo.registry import REGISTRY

    return [name for name, spec in REGISTRY.items() if spec.task == "classification"]


@pytest.mark.parametrize("name", _classification_names())
def test_default_build_has_the_registry_params(name):
    import zoo
    from zoo.registry import get_spec

    model = zoo.build(name)
    expected = {**ISSUE_PARAMS, **TORCHVISION_BN}[name]
    assert get_spec(name).params == expected
    assert trainable_params(model) == expected


@pytest.mark.parametrize("name", sorted(KERAS_V1_PARAMS))
def test_keras_v1_resnet_params(name):
    import zoo

    assert trainable_params(zoo.build(name, style="keras")) == KERAS_V1_PARAMS[name]
