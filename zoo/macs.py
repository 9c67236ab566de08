"""Multiply-accumulates (MACs) of a built Keras model, for one input sample.

Counted, from the static shapes of each layer call in the model's graph (nested models too):
    Conv1D/2D/3D: output positions x output channels x kernel volume x input channels / groups
    DepthwiseConv1D/2D: output positions x output channels x kernel volume
    SeparableConv1D/2D: its depthwise part + its pointwise part
    Conv1D/2D/3DTranspose: input positions x input channels x kernel volume x output channels
    Dense: input size x units (per position when the input has extra axes)
    LSTM / GRU / SimpleRNN: per time step, (input + units) x units x gates
    a layer with a `macs_per_sample(input_shapes)` method: what it returns (e.g. an attention LSTM)
Not counted (cheap next to the above, as torchvision / fvcore tables do): biases, batch norm,
activations, pooling, additions, concatenation, resizing and the Preprocess layer. A layer called
several times in the graph counts every call. Dimensions must be static (a fixed input_shape).
"""

from __future__ import annotations

import math

from zoo.errors import UsageError


def _shape(tensor) -> tuple[int, ...]:
    shape = tuple(tensor.shape[1:])
    if any(d is None for d in shape):
        raise UsageError(f"count_macs needs static shapes. Received: a tensor of shape {tuple(tensor.shape)}. "
                         f"Build the model with a fixed input_shape.")
    return shape


def _layer_macs(layer, inputs, outputs) -> int:
    from keras import layers as L

    own = getattr(layer, "macs_per_sample", None)
    if callable(own):  # a layer that loops inside (an attention recurrence) states its own cost
        return int(own([_shape(t) for t in inputs]))
    if isinstance(layer, (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)):
        in_shape = _shape(inputs[0])
        return math.prod(in_shape) * math.prod(layer.kernel_size) * layer.filters
    if isinstance(layer, (L.SeparableConv1D, L.SeparableConv2D)):
        in_shape, out_shape = _shape(inputs[0]), _shape(outputs[0])
        mid = in_shape[-1] * layer.depth_multiplier
        positions = math.prod(out_shape[:-1])
        return positions * mid * math.prod(layer.kernel_size) + positions * mid * layer.filters
    if isinstance(layer, (L.DepthwiseConv1D, L.DepthwiseConv2D)):
        out_shape = _shape(outputs[0])
        return math.prod(out_shape) * math.prod(layer.kernel_size)
    if isinstance(layer, (L.Conv1D, L.Conv2D, L.Conv3D)):
        in_shape, out_shape = _shape(inputs[0]), _shape(outputs[0])
        return math.prod(out_shape) * math.prod(layer.kernel_size) * in_shape[-1] // layer.groups
    if isinstance(layer, L.Dense):
        in_shape = _shape(inputs[0])
        return math.prod(in_shape) * layer.units
    if isinstance(layer, (L.LSTM, L.GRU, L.SimpleRNN)):
        in_shape = _shape(inputs[0])
        gates = 4 if isinstance(layer, L.LSTM) else 3 if isinstance(layer, L.GRU) else 1
        steps, features = in_shape[0], in_shape[-1]
        return steps * (features + layer.units) * layer.units * gates
    return 0


def _functional(model):
    import keras

    if isinstance(model, keras.Sequential):
        model = getattr(model, "_functional", None) or model
    if getattr(model, "_nodes_by_depth", None) is None:
        raise UsageError(f"count_macs needs a functional or Sequential Keras model. Received: {type(model).__name__}. "
                         f"Build it with keras.Model(inputs, outputs) or zoo.build.")
    return model


def count_macs(model, *, input_shape: tuple[int, ...] | None = None) -> int:
    """Multiply-accumulates of one forward pass of `model` on one sample (see the module docstring).

    Args:
        model: a functional or Sequential Keras model (zoo's builders make these).
        input_shape: count at this input shape (without batch) instead of the one the model was
            built with; shapes are propagated through the graph, nothing is rebuilt or run.
    """
    import keras
    from keras import tree

    graph = _functional(model)
    if input_shape is None:
        specs = [keras.KerasTensor((1, *x.shape[1:]), dtype=x.dtype) for x in graph.inputs]
    else:
        if len(graph.inputs) != 1:
            raise UsageError(f"`input_shape` works for single-input models; {model.name!r} has {len(graph.inputs)}.")
        specs = [keras.KerasTensor((1, *input_shape), dtype=graph.inputs[0].dtype)]
    total = 0

    def visit(op, *args, **kwargs):
        nonlocal total
        inputs = [t for t in tree.flatten((args, kwargs)) if isinstance(t, keras.KerasTensor)]
        if isinstance(op, keras.Model):
            total += count_macs(op, input_shape=tuple(inputs[0].shape[1:])) if len(inputs) == 1 else count_macs(op)
            return op.compute_output_spec(*args, **kwargs)
        outputs = op.compute_output_spec(*args, **kwargs)
        total += _layer_macs(op, inputs, tree.flatten(outputs))
        return outputs

    graph._run_through_graph(specs, call_fn=visit)
    return total
