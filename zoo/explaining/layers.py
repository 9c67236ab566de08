"""Which layer to explain, and how to see inside a model while it runs.

Grad-CAM needs one feature map of the model and the gradient of a class score with respect to
it. zoo models carry their preprocessing as layers and may be nested (a fine-tuned model, a
backbone inside a task model, a Sequential around a zoo model), so a sub-model cut at the layer
does not exist in general. Instead `capture` wraps the chosen layer's `call` for the duration of
a forward pass and keeps the tensor it returns: it works at any depth of nesting and inside a
tf.function. The same mechanism runs the classifier without its final softmax, so gradients are
taken of logits, which do not saturate (Selvaraju et al. 2017 use the score before the softmax).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from zoo.errors import UsageError

# Layers that only resample a feature map: Grad-CAM by default explains the map just before them
# (the last convolution's output has the finer grid, as in Selvaraju et al.'s VGG relu5_3).
_POOLING = ("MaxPooling2D", "AveragePooling2D", "AdaptiveAveragePooling2D", "AdaptiveMaxPooling2D")
_CONV = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose")


def all_layers(model) -> list:
    """Every leaf layer of `model` in execution order, nested models expanded."""
    from zoo.training.freeze import flat_layers

    return flat_layers(model)


def _rank(layer) -> int | None:
    try:
        return len(layer.output.shape)
    except (AttributeError, ValueError, TypeError):  # a shared layer has no single output
        return None


def output_layers(model) -> list:
    """The leaf layers that produce the model's outputs (inside nested models too)."""
    found = []
    for tensor in getattr(model, "outputs", None) or []:
        history = getattr(tensor, "_keras_history", None)
        op = history[0] if history else None
        while op is not None and getattr(op, "layers", None):
            inner = getattr(op, "outputs", None) or []
            history = getattr(inner[0], "_keras_history", None) if inner else None
            op = history[0] if history else None
        if op is not None:
            found.append(op)
    return found


def feature_layers(model) -> list:
    """Layers whose output is a spatial feature map (N, H, W, C), from the first convolution on
    (so the preprocessing is never one), excluding the model's own outputs."""
    layers = all_layers(model)
    first = next((i for i, l in enumerate(layers) if type(l).__name__ in _CONV), None)
    if first is None:
        return []
    outputs = {id(l) for l in output_layers(model)}
    return [l for l in layers[first:] if _rank(l) == 4 and id(l) not in outputs]


def default_layer(model):
    """The last convolutional feature map: the last 4-D layer output before the network pools it
    to a vector, stepping back over trailing pooling layers."""
    maps = feature_layers(model)
    if not maps:
        raise UsageError("This model has no convolutional feature map to explain with Grad-CAM (no Conv2D layer "
                         "with a 4-D output was found). Use --method saliency, smoothgrad or integrated-gradients, "
                         "or name a layer with --layer.")
    last = len(maps) - 1
    while last > 0 and type(maps[last]).__name__ in _POOLING:
        last -= 1
    return maps[last]


def find_layer(model, name: str):
    """The layer called `name`, searched in nested models too; a clear error naming candidates."""
    for layer in all_layers(model):
        if layer.name == name:
            return layer
    names = [l.name for l in feature_layers(model)]
    import difflib

    close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    tail = ", ".join(names[-6:]) if names else "none"
    raise UsageError(f"No layer named {name!r} in this model.{hint} The last feature maps are: {tail}.")


def resolve_layer(model, layer: Any = None):
    """None -> the default layer; a name -> that layer; a layer object -> itself. It must output a
    4-D feature map."""
    if layer is None:
        return default_layer(model)
    found = find_layer(model, layer) if isinstance(layer, str) else layer
    if _rank(found) != 4:
        shape = getattr(getattr(found, "output", None), "shape", None)
        raise UsageError(f"Layer {found.name!r} outputs shape {shape}, not a feature map (N, H, W, C). "
                         f"Pick a convolutional layer, e.g. {default_layer(model).name!r}.")
    return found


def head_activation(model) -> tuple[Any, str | None]:
    """(layer, "softmax" | "sigmoid") when the model's output comes from a softmax / sigmoid that
    `capture(logits=True)` can switch off, else (None, None)."""
    outputs = output_layers(model)
    if len(outputs) != 1:
        return None, None
    layer = outputs[0]
    if type(layer).__name__ == "Softmax":
        return layer, "softmax"
    name = getattr(getattr(layer, "activation", None), "__name__", None)
    if name in ("softmax", "sigmoid"):
        return layer, name
    return None, None


@contextmanager
def capture(model, layers: list | tuple = (), *, logits: bool = False) -> Iterator[dict]:
    """While active, running `model` stores each of `layers`' outputs in the yielded dict (keyed by
    layer name); with `logits`, the final softmax / sigmoid is skipped so the model returns logits.
    The model is restored on exit, also after an error."""
    store: dict[str, Any] = {}
    undo: list = []
    try:
        for layer in layers:
            original = layer.call

            def call(*args, _original=original, _name=layer.name, **kwargs):
                out = _original(*args, **kwargs)
                store[_name] = out
                return out

            # object.__setattr__: a wrapper for the duration of a pass, not state Keras should track
            object.__setattr__(layer, "call", call)
            undo.append((layer, "call", None))
        if logits:
            layer, kind = head_activation(model)
            if layer is not None:
                import keras

                if type(layer).__name__ == "Softmax":
                    object.__setattr__(layer, "call", lambda inputs, mask=None: inputs)
                    undo.append((layer, "call", None))
                else:
                    undo.append((layer, "activation", layer.activation))
                    object.__setattr__(layer, "activation", keras.activations.linear)
        yield store
    finally:
        for layer, attr, value in reversed(undo):
            if attr == "call":
                object.__delattr__(layer, "call")
            else:
                object.__setattr__(layer, attr, value)
