"""Loop over the registry: every classification model is built once, at its smallest valid input
(the VGG and LeNet heads need their default size), and
- its trainable parameters equal the table (torchvision's counts),
- its MACs at the default input (zoo.macs) equal the table, and the published figures within 3%,
- it runs on two images: the softmax head and the feature maps at their documented strides,
- one pixel less than the smallest input is a UsageError saying the minimum.
"""

import math

import numpy as np
import pytest

from zoo.registry import REGISTRY

NAMES = [name for name, spec in REGISTRY.items() if spec.task == "classification"]
TORCHVISION_PARAMS = {
    "lenet5": 61_706, "alexnet": 61_100_840, "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544,
    "vgg19": 143_667_240, "vgg11_bn": 132_868_840, "googlenet": 6_624_904, "resnet18": 11_689_512,
    "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160, "resnet152": 60_192_808,
    "densenet121": 7_978_856, "densenet169": 14_149_480, "densenet201": 20_013_928,
}
TORCHVISION_BN = {"vgg13_bn": 133_053_736, "vgg16_bn": 138_365_992, "vgg19_bn": 143_678_248}  # the BN variants, from torchvision too
KERAS_V1_PARAMS = {"resnet50": 25_583_592, "resnet101": 44_601_832, "resnet152": 60_268_520}
PUBLISHED_MACS = {"alexnet": 0.714e9, "vgg16": 15.47e9, "googlenet": 1.498e9, "resnet50": 4.089e9, "densenet121": 2.834e9}
FIXED_TOP = ("lenet5", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn")


def trainable_params(model) -> int:
    return sum(math.prod(w.shape) for w in model.trainable_weights)


def test_every_classification_model_has_a_params_target():
    assert sorted(NAMES) == sorted({**TORCHVISION_PARAMS, **TORCHVISION_BN})


def _check_features(features, size):
    for key, value in features.items():
        stride = {"pool3": 8, "pool4": 16, "pool5": 32}.get(key) or int(key[1:])
        h, w = value.shape[1:3]
        # Unpadded layers (LeNet, AlexNet) leave maps a little below size / stride.
        assert value.shape[0] == 2 and h == w and max(1, size // stride - 3) <= h <= -(-size // stride), (key, value.shape)


@pytest.mark.parametrize("name", NAMES)
def test_registry_model(name):
    import keras

    import zoo
    from zoo.errors import UsageError
    from zoo.macs import count_macs
    from zoo.registry import family_module

    spec, module = REGISTRY[name], family_module(REGISTRY[name])
    channels = spec.input_shape[-1]
    size = spec.input_shape[0] if name == "lenet5" else module.MIN_SIZE
    model = zoo.build(name) if name in FIXED_TOP else zoo.build(name, input_shape=(size, size, channels))
    assert model.output_shape == (None, spec.classes)

    assert trainable_params(model) == spec.params == {**TORCHVISION_PARAMS, **TORCHVISION_BN}[name]
    macs = count_macs(model, input_shape=spec.input_shape)
    assert macs == spec.macs == zoo.info(name)["macs"]
    if name in PUBLISHED_MACS:
        assert abs(macs / PUBLISHED_MACS[name] - 1) < 0.03, (name, macs)

    if name in FIXED_TOP and name != "lenet5":  # the dense head needs 224: run the convolutions alone
        model = zoo.build(name, input_shape=(size, size, channels), include_top=False, pooling="avg")
    features = module.feature_model(model)
    probe = keras.Model(model.input, {"out": model.output, **features.output})
    x = np.random.default_rng(0).uniform(0, 255, (2, size, size, channels)).astype("float32")
    out = {k: keras.ops.convert_to_numpy(v) for k, v in probe(x).items()}
    assert all(np.isfinite(v).all() for v in out.values())
    if model.output_shape[-1] == spec.classes:
        assert out["out"].shape == (2, spec.classes)
        np.testing.assert_allclose(out["out"].sum(axis=-1), 1.0, rtol=1e-4)  # softmax head
    expected = {"lenet5": {"s2", "s4"}}.get(name, {"s4", "s8", "s16", "s32"})
    assert set(features.output) == (expected | {"pool3", "pool4", "pool5"} if name.startswith("vgg") else expected)
    _check_features({k: v for k, v in out.items() if k != "out"}, size)

    too_small = (module.MIN_SIZE - 1, module.MIN_SIZE, channels)
    with pytest.raises(UsageError, match=f"at least {module.MIN_SIZE}x{module.MIN_SIZE}"):
        zoo.build(name, input_shape=too_small, include_top=False)


@pytest.mark.parametrize("name", ["resnet101", "resnet152"])  # resnet50's is checked with keras parity
def test_keras_v1_resnet_params(name):
    import zoo

    assert trainable_params(zoo.build(name, style="keras")) == KERAS_V1_PARAMS[name]


def test_build_backbone_gives_named_feature_maps():
    import zoo

    backbone = zoo.build_backbone("resnet18", input_shape=(64, 64, 3))
    out = backbone(np.zeros((2, 64, 64, 3), "float32"))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "s4": (2, 16, 16, 64), "s8": (2, 8, 8, 128), "s16": (2, 4, 4, 256), "s32": (2, 2, 2, 512)}
