"""keras.applications parity: random weights (batch-norm statistics too) copied by layer name
into zoo's builder give the same outputs. This proves keras.applications' files map by name."""

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _randomise(model, seed):
    """Non-trivial weights: random kernels and biases, BN gamma/beta random, moving stats random positive."""
    rng = np.random.default_rng(seed)

    def uniform(low, high, shape):  # float32 draws: VGG's 100M-weight fc1 stays quick
        return (low + (high - low) * rng.random(shape, dtype=np.float32)).astype(np.float32)

    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if layer.__class__.__name__ == "BatchNormalization":
            gamma, beta, mean, var = weights
            new = [uniform(0.5, 1.5, gamma.shape), uniform(-0.2, 0.2, beta.shape),
                   uniform(-0.5, 0.5, mean.shape), uniform(0.5, 2.0, var.shape)]
        else:
            new = []
            for w in weights:
                # Kernels scaled by fan-in keep activations O(1) through deep stacks; biases non-zero.
                bound = np.sqrt(3.0 / np.prod(w.shape[:-1])) if w.ndim > 1 else 0.2
                new.append(uniform(-bound, bound, w.shape))
        layer.set_weights(new)


def _transfer_by_name(source, target):
    target_layers = {layer.name: layer for layer in target.layers}
    copied = 0
    for layer in source.layers:
        weights = layer.get_weights()
        if weights:
            target_layers[layer.name].set_weights(weights)  # a missing name fails here, loudly
            copied += 1
    assert copied == sum(1 for layer in target.layers if layer.get_weights())
    return copied


@pytest.mark.parametrize(
    "keras_fn, zoo_name, options, size",
    [("VGG16", "vgg16", {}, 224), ("ResNet50", "resnet50", {"style": "keras"}, 96),
     ("DenseNet121", "densenet121", {}, 96)],
)
def test_keras_applications_weights_map_by_name(keras_fn, zoo_name, options, size):
    import keras

    import zoo

    shape = (size, size, 3)
    # Logits (no softmax) so that the comparison sees every unit of the head.
    ref = getattr(keras.applications, keras_fn)(weights=None, input_shape=shape, classifier_activation=None)
    ours = zoo.build(zoo_name, include_preprocessing=False, input_shape=shape, classifier_activation=None, **options)
    _randomise(ref, seed=0)
    _transfer_by_name(ref, ours)
    x = np.random.default_rng(1).normal(0, 1, (2, *shape)).astype("float32")
    want = keras.ops.convert_to_numpy(ref(x, training=False))
    got = keras.ops.convert_to_numpy(ours(x, training=False))
    assert got.shape == want.shape == (2, 1000)
    assert np.std(want) > 1e-3  # the random weights make a non-trivial output
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))
