"""zoo.macs.count_macs on layers whose MACs follow from their definition."""

import pytest


def _macs(layer, input_shape):
    import keras

    from zoo.macs import count_macs

    inputs = keras.Input(input_shape)
    return count_macs(keras.Model(inputs, layer(inputs)))


def test_conv_depthwise_transposed_and_dense_counts():
    from keras import layers

    # 3x3 conv, 8->16 channels, on 10x10 "same": 10*10 positions * 16 outputs * 9 taps * 8 inputs.
    assert _macs(layers.Conv2D(16, 3, padding="same"), (10, 10, 8)) == 10 * 10 * 16 * 9 * 8
    # Stride 2 "valid" 3x3 on 11x11 gives 5x5 outputs.
    assert _macs(layers.Conv2D(4, 3, strides=2), (11, 11, 2)) == 5 * 5 * 4 * 9 * 2
    # Grouped: each output sees in/groups channels.
    assert _macs(layers.Conv2D(8, 1, groups=4), (6, 6, 8)) == 6 * 6 * 8 * 1 * 2
    # Depthwise with multiplier 2: every one of 3*2 outputs at 4x4 positions has 5*5 taps.
    assert _macs(layers.DepthwiseConv2D(5, depth_multiplier=2, padding="same"), (4, 4, 3)) == 4 * 4 * 6 * 25
    # Transposed: each of 5x5 input pixels x 3 channels scatters into a 4x4 window of 7 channels.
    assert _macs(layers.Conv2DTranspose(7, 4, strides=2), (5, 5, 3)) == 5 * 5 * 3 * 16 * 7
    # Dense on a sequence: 6 positions x 32 inputs x 10 units.
    assert _macs(layers.Dense(10), (6, 32)) == 6 * 32 * 10
    # Separable: depthwise 3x3 on 8x8x4, then 1x1 to 5 channels.
    assert _macs(layers.SeparableConv2D(5, 3, padding="same"), (8, 8, 4)) == 8 * 8 * 4 * 9 + 8 * 8 * 4 * 5


def test_nested_models_and_repeated_calls_are_all_counted():
    import keras

    from zoo.macs import count_macs

    inner_in = keras.Input((8,))
    inner = keras.Model(inner_in, keras.layers.Dense(4)(inner_in))
    shared = keras.layers.Dense(8)
    x_in = keras.Input((8,))
    y = shared(shared(x_in))  # called twice: 2 * 8 * 8
    model = keras.Model(x_in, inner(y))
    assert count_macs(model) == 2 * 8 * 8 + 8 * 4


def test_lstm_counts_gates_per_step():
    from keras import layers

    assert _macs(layers.LSTM(16), (5, 8)) == 5 * (8 + 16) * 16 * 4


def test_dynamic_shape_is_a_usage_error():
    from zoo.errors import UsageError

    with pytest.raises(UsageError, match="static shapes"):
        _macs(__import__("keras").layers.Conv2D(2, 3), (None, None, 3))


def test_counting_at_another_input_shape_equals_building_at_it():
    import zoo
    from zoo.macs import count_macs

    small = zoo.build("resnet18", input_shape=(32, 32, 3), num_classes=5)
    assert count_macs(small, input_shape=(96, 96, 3)) == count_macs(
        zoo.build("resnet18", input_shape=(96, 96, 3), num_classes=5))
