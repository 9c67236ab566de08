"""Bad arguments raise UsageError (a ValueError) stating the rule, the value received and what to do,
before Keras could fail deep inside a shape computation."""

import pytest

CASES = [
    ("resnet50", {"num_classes": 0}, ["positive integer", "classes=0", "e.g. classes=10"]),
    ("lenet5", {"num_classes": -2}, ["positive integer", "classes=-2"]),
    ("vgg16", {"include_top": False, "pooling": "mean"}, ["'avg', 'max' or None", "pooling='mean'"]),
    ("densenet121", {"input_shape": (16, 16, 3)}, ["at least 32x32", "(16, 16, 3)", "larger input_shape"]),
    ("alexnet", {"input_shape": (62, 62, 3)}, ["at least 63x63", "(62, 62, 3)"]),
    ("resnet18", {"input_shape": (64, 64, 2)}, ["3 `mean` values", "input has 2 channels", "one mean per channel"]),
    # one and four channels follow zoo.preprocessing.adapt_preprocessing; two channels have no rule
    ("googlenet", {"input_shape": (64, 64, 2)}, ["3 `mean` values", "2 channels", "convert gray images to RGB"]),
    ("vgg16", {"input_shape": (128, 128, 3)}, ["needs input 224x224", "(128, 128, 3)", "include_top=False"]),
    ("lenet5", {"input_shape": (28, 28, 1)}, ["needs input 32x32", "(28, 28, 1)", "include_top=False"]),
    ("resnet50", {"style": "caffe"}, ["'keras', 'torchvision'", "style='caffe'"]),
    ("densenet169", {"growth": 12}, ["no option 'growth'", "growth_rate"]),
    ("alexnet", {"input_shape": (224, 224)}, ["(height, width, channels)", "(224, 224)"]),
    ("googlenet", {"include_top": False, "aux_logits": True}, ["aux_logits=True needs include_top=True"]),
    ("vgg11", {"dropout": 1.5}, ["[0, 1)", "dropout=1.5"]),
    ("resnet34", {"classifier_activation": 3}, ["classifier_activation", "=3"]),
    ("resnet05", {}, ["Unknown model 'resnet05'", "'resnet50'", "zoo list"]),
]


@pytest.mark.parametrize("name, kwargs, words", CASES, ids=[f"{c[0]}-{'-'.join(c[1]) or 'name'}" for c in CASES])
def test_bad_argument_says_rule_value_and_fix(name, kwargs, words):
    import zoo
    from zoo.errors import UsageError

    with pytest.raises(UsageError) as err:
        zoo.build(name, **kwargs)
    assert isinstance(err.value, ValueError)
    message = str(err.value)
    for word in words:
        assert word in message, message


def test_classes_are_ignored_without_a_head_like_keras():
    import zoo

    model = zoo.build("resnet18", include_top=False, num_classes=0, input_shape=(32, 32, 3))
    assert model.output_shape == (None, 1, 1, 512)


def test_keras_style_input_tensor_with_weights_is_refused():
    # A Keras tensor with weights is keras.applications' idiom and works (see
    # tests/test_keras_applications_suite.py); anything else is refused before any download.
    import numpy as np

    from zoo.errors import UsageError
    from zoo.models import ResNet50

    with pytest.raises(UsageError, match="input_tensor"):
        ResNet50(weights="imagenet", input_tensor=np.zeros((1, 64, 64, 3), "float32"))


def test_input_tensor_shape_is_validated_like_input_shape():
    import keras

    from zoo.errors import UsageError
    from zoo.models import DenseNet121, LeNet5

    with pytest.raises(UsageError, match="at least 32x32"):
        DenseNet121(include_top=False, input_tensor=keras.Input((20, 20, 3)))
    with pytest.raises(UsageError, match="needs input 32x32"):
        LeNet5(input_tensor=keras.Input((40, 40, 1)))
