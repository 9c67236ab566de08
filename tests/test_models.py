"""Model features beyond the registry loop: GoogLeNet aux heads, keras-style functions, ResNet styles."""

import inspect

import numpy as np
import pytest


def test_googlenet_aux_classifiers_are_extra_outputs():
    import zoo

    model = zoo.build("googlenet", aux_logits=True, input_shape=(32, 32, 3), num_classes=4)
    outs = model(np.zeros((2, 32, 32, 3), "float32"))
    assert [tuple(o.shape) for o in outs] == [(2, 4)] * 3
    names = {w.path.split("/")[0] for w in model.trainable_weights}
    assert {"aux1_fc2", "aux2_fc2", "aux1_conv_conv", "predictions"} <= names


def test_keras_style_functions_have_the_keras_applications_signature():
    import keras

    import zoo.models as models
    from zoo.models import _BUILDERS

    mine = [n for n, family in _BUILDERS.items() if family in ("lenet", "alexnet", "vgg", "googlenet", "resnet", "densenet")]
    reference = list(inspect.signature(keras.applications.ResNet50).parameters)
    for fn_name in mine:
        params = inspect.signature(getattr(models, fn_name)).parameters
        assert list(params)[: len(reference)] == reference, fn_name
        assert "include_preprocessing" in params, fn_name
    model = models.ResNet18(weights=None, input_shape=(32, 32, 3), classes=3, include_preprocessing=False)
    assert model.output_shape == (None, 3) and model.name == "resnet18"
    tensor = keras.Input((40, 40, 1))
    lenet_body = models.LeNet5(include_top=False, input_tensor=tensor, pooling="max")
    assert lenet_body.input_shape == (None, 40, 40, 1) and lenet_body.output_shape == (None, 16)


def test_resnet_styles_differ_where_documented():
    import zoo

    torch_style = zoo.build("resnet50", input_shape=(64, 64, 3), include_top=False)
    keras_style = zoo.build("resnet50", input_shape=(64, 64, 3), include_top=False, style="keras")
    assert torch_style.get_layer("conv3_block1_1_conv").strides == (1, 1)
    assert torch_style.get_layer("conv3_block1_2_conv").strides == (2, 2)
    assert not torch_style.get_layer("conv3_block1_2_conv").use_bias
    assert torch_style.get_layer("conv1_bn").epsilon == pytest.approx(1e-5)
    assert keras_style.get_layer("conv3_block1_1_conv").strides == (2, 2)
    assert keras_style.get_layer("conv3_block1_2_conv").use_bias
    assert keras_style.get_layer("conv1_bn").epsilon == pytest.approx(1.001e-5)
    # Default preprocessing follows the style's weights: torchvision "torch", keras "caffe".
    assert torch_style.get_layer("preprocess").mode == "torch"
    assert keras_style.get_layer("preprocess").mode == "caffe"
