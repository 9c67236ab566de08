"""Keras's own applications suite (keras/src/applications/applications_test.py) on zoo.models.

The test bodies and every assertion are Keras's; what changed: the model list (zoo's families,
with the width of their last feature map), pytest parametrisation instead of absl's, and the
download test. `test_application_base` fetched ImageNet weights and an elephant photo; here it is
offline: LeNet-5 with its shipped Fashion-MNIST weights on a shipped sample (the true label must
be in the top 3), and every other family with a weights file written locally by a model whose
top-1 class must then be in the top 3 of the model loaded from that file.

zoo builds channels_last networks only and refuses channels_first with one line, so every family
takes Keras's own skip for models that do not support channels_first (its
MODELS_UNSUPPORTED_CHANNELS_FIRST); test_channels_first_is_refused_in_one_line holds the refusal.
Families whose full model is large (VGG, the deep ResNets and DenseNets) are marked slow.
"""

from __future__ import annotations

import pytest

import zoo  # noqa: F401  (installs the registry hook the builders use for weights)
from zoo.models import alexnet, densenet, googlenet, lenet, resnet, vgg

slow = pytest.mark.slow

# (builder, width of the last feature map, family module); heavy ones marked slow.
MODEL_LIST = [
    (lenet.LeNet5, 16, lenet, ()),
    (alexnet.AlexNet, 256, alexnet, ()),
    (vgg.VGG11, 512, vgg, (slow,)),
    (vgg.VGG16, 512, vgg, (slow,)),
    (vgg.VGG19, 512, vgg, (slow,)),
    (vgg.VGG16BN, 512, vgg, (slow,)),
    (googlenet.GoogLeNet, 1024, googlenet, ()),
    (resnet.ResNet18, 512, resnet, ()),
    (resnet.ResNet34, 512, resnet, (slow,)),
    (resnet.ResNet50, 2048, resnet, ()),
    (resnet.ResNet101, 2048, resnet, (slow,)),
    (resnet.ResNet152, 2048, resnet, (slow,)),
    (densenet.DenseNet121, 1024, densenet, ()),
    (densenet.DenseNet169, 1664, densenet, (slow,)),
    (densenet.DenseNet201, 1920, densenet, (slow,)),
]
MODELS_UNSUPPORTED_CHANNELS_FIRST = [app.__name__ for app, *_ in MODEL_LIST]

test_parameters = [
    pytest.param(app, last_dim, module, image_data_format, marks=marks,
                 id=f"{app.__name__}_{image_data_format}")
    for image_data_format in ["channels_first", "channels_last"]
    for app, last_dim, module, marks in MODEL_LIST
]


@pytest.fixture(autouse=True)
def _restore_image_data_format():
    from keras import backend

    original = backend.image_data_format()
    yield
    backend.set_image_data_format(original)


def skip_if_invalid_image_data_format_for_model(app, image_data_format):
    does_not_support_channels_first = any(
        unsupported_name.lower() in app.__name__.lower() for unsupported_name in MODELS_UNSUPPORTED_CHANNELS_FIRST
    )
    if image_data_format == "channels_first" and does_not_support_channels_first:
        pytest.skip(f"{app.__name__} does not support channels first")


@pytest.mark.parametrize("app, last_dim, _, image_data_format", test_parameters)
def test_application_notop_variable_input_channels(app, last_dim, _, image_data_format):
    from keras import backend

    skip_if_invalid_image_data_format_for_model(app, image_data_format)
    backend.set_image_data_format(image_data_format)

    # Test compatibility with 1 channel
    if image_data_format == "channels_first":
        input_shape = (1, None, None)
        correct_output_shape = [None, last_dim, None, None]
    else:
        input_shape = (None, None, 1)
        correct_output_shape = [None, None, None, last_dim]

    model = app(weights=None, include_top=False, input_shape=input_shape)
    output_shape = list(model.outputs[0].shape)
    assert output_shape == correct_output_shape

    # Test compatibility with 4 channels
    if image_data_format == "channels_first":
        input_shape = (4, None, None)
    else:
        input_shape = (None, None, 4)
    model = app(weights=None, include_top=False, input_shape=input_shape)
    output_shape = list(model.outputs[0].shape)
    assert output_shape == correct_output_shape


def _offline_weights(app, tmp_path):
    """(weights for app(weights=...), an image batch, the class that must be in the top 3)."""
    import numpy as np

    if app is lenet.LeNet5:
        from pathlib import Path

        from keras.utils import img_to_array, load_img

        import zoo.samples

        path = Path(zoo.samples.__file__).parent / "fashion_mnist" / "0000_ankle_boot.png"
        x = img_to_array(load_img(path, target_size=(32, 32), color_mode="grayscale"))
        return "fashion_mnist", np.expand_dims(x, axis=0), "Ankle boot"
    source = app(weights=None)
    x = np.random.default_rng(0).uniform(0, 255, (1, *source.input_shape[1:])).astype("float32")
    path = tmp_path / f"{app.__name__}.weights.h5"
    source.save_weights(path)
    top1 = int(np.argmax(source.predict(x, verbose=0)[0]))
    return str(path), x, top1


@pytest.mark.parametrize("app, _, app_module, image_data_format", test_parameters)
def test_application_base(app, _, app_module, image_data_format, tmp_path):
    from keras import backend
    from keras import saving as serialization_lib  # keras.src.saving.serialization_lib's public names

    skip_if_invalid_image_data_format_for_model(app, image_data_format)
    backend.set_image_data_format(image_data_format)

    weights, x, expected = _offline_weights(app, tmp_path)
    # Can be instantiated with default arguments
    model = app(weights=weights)

    # Can run a correct inference on a test image
    x = app_module.preprocess_input(x)
    preds = model.predict(x, verbose=0)
    decoded = app_module.decode_predictions(preds)[0]
    names = [p[1] for p in decoded] if isinstance(expected, str) else [int(p[0]) for p in decoded]
    # Test correct label is in top 3 (weak correctness test).
    assert expected in names[:3]

    # Can be serialized and deserialized
    config = serialization_lib.serialize_keras_object(model)
    reconstructed_model = serialization_lib.deserialize_keras_object(config)
    assert len(model.weights) == len(reconstructed_model.weights)


@pytest.mark.parametrize("app, last_dim, _, image_data_format", test_parameters)
def test_application_notop_custom_input_shape(app, last_dim, _, image_data_format):
    from keras import backend

    skip_if_invalid_image_data_format_for_model(app, image_data_format)
    backend.set_image_data_format(image_data_format)

    if image_data_format == "channels_first":
        input_shape = (3, 123, 123)
        last_dim_axis = 1
    else:
        input_shape = (123, 123, 3)
        last_dim_axis = -1
    model = app(weights=None, include_top=False, input_shape=input_shape)
    output_shape = list(model.outputs[0].shape)
    assert output_shape[last_dim_axis] == last_dim


@pytest.mark.parametrize("app, last_dim, _, image_data_format", test_parameters)
def test_application_notop_custom_input_tensor(app, last_dim, _, image_data_format):
    from keras import backend
    from keras.layers import Conv2D, Input

    skip_if_invalid_image_data_format_for_model(app, image_data_format)
    backend.set_image_data_format(image_data_format)

    if image_data_format == "channels_first":
        input_shape = (4, 200, 200)
        last_dim_axis = 1
    else:
        input_shape = (200, 200, 4)
        last_dim_axis = -1

    inputs_custom = Input(shape=input_shape, name="custom_input")
    inputs_custom = Conv2D(3, (2, 2), padding="valid", strides=(2, 2))(inputs_custom)
    model = app(weights=None, include_top=False, input_tensor=inputs_custom)
    output_shape = list(model.outputs[0].shape)
    assert output_shape[last_dim_axis] == last_dim


@pytest.mark.parametrize("app, last_dim, _, image_data_format", test_parameters)
def test_application_pooling(app, last_dim, _, image_data_format):
    from keras import backend

    skip_if_invalid_image_data_format_for_model(app, image_data_format)
    backend.set_image_data_format(image_data_format)

    model = app(weights=None, include_top=False, pooling="max")
    output_shape = list(model.outputs[0].shape)
    assert output_shape == [None, last_dim]


@pytest.mark.parametrize("app, _last_dim, _module, _image_data_format", test_parameters)
def test_application_classifier_activation(app, _last_dim, _module, _image_data_format):
    model = app(weights=None, include_top=True, classifier_activation="softmax")
    last_layer_act = model.layers[-1].activation.__name__
    assert last_layer_act == "softmax"


# --------------------------------------------------------------------------- zoo's additions


@pytest.mark.parametrize("app", [lenet.LeNet5, resnet.ResNet18])
def test_channels_first_is_refused_in_one_line(app):
    import keras

    from zoo.errors import UsageError

    keras.config.set_image_data_format("channels_first")
    with pytest.raises(UsageError) as err:
        app(weights=None)
    message = str(err.value)
    assert "\n" not in message
    assert "channels_last" in message and "'channels_first'" in message


def test_keras_application_defaults_without_top_are_any_size():
    model = resnet.ResNet18(weights=None, include_top=False)
    assert model.input_shape == (None, None, None, 3)
    assert resnet.ResNet18(weights=None).input_shape == (None, 224, 224, 3)
    assert lenet.LeNet5(weights=None, include_top=False).input_shape == (None, None, None, 1)


def test_weights_with_an_input_tensor_start_the_model_there():
    import keras
    import numpy as np

    inputs = keras.Input((64, 64, 1))
    pooled = keras.layers.AveragePooling2D(2)(inputs)
    model = lenet.LeNet5(weights="fashion_mnist", input_tensor=pooled)
    assert model.input_shape == (None, 64, 64, 1)
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 1)).astype("float32")
    want = lenet.LeNet5(weights="fashion_mnist").predict(x.reshape(2, 32, 2, 32, 2, 1).mean(axis=(2, 4)), verbose=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), want, atol=1e-5)
