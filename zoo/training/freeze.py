"""Freezing, blocks and head swaps for fine-tuning.

A model's *head* is the chain of classifier layers at its end (Flatten / global pooling / Dropout /
Dense / Activation...), found by walking back from the output; everything before it is the *base*.
*Blocks* group base layers by name ("conv5_block3_2_conv" -> "conv5_block3", "block5_conv1" ->
"block5", "c3_conv" -> "c3"): the unit of `unfreeze=N` and of layer-wise LR decay.
"""

from __future__ import annotations

from typing import Any

from zoo.errors import UsageError

# Layers that may form a classifier head (walked back from the output).
_HEAD_TYPES = ("Dense", "Dropout", "Activation", "Softmax", "Flatten", "GlobalAveragePooling2D",
               "GlobalMaxPooling2D", "Reshape", "ReLU")


def flat_layers(model) -> list:
    """All leaf layers in order, nested models expanded (input layers dropped)."""
    out = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        if hasattr(layer, "layers") and layer.layers:
            out += flat_layers(layer)
        else:
            out.append(layer)
    return out


def head_layers(model) -> list:
    """The trailing chain of classifier layers of `model` (empty if the output is not a head)."""
    layers = [l for l in model.layers if type(l).__name__ != "InputLayer"]
    head: list = []
    for layer in reversed(layers):
        if type(layer).__name__ not in _HEAD_TYPES or (hasattr(layer, "layers") and layer.layers):
            break
        head.insert(0, layer)
    dense = [i for i, l in enumerate(head) if type(l).__name__ == "Dense"]
    if not dense:
        return []
    # An all-Dense model (an MLP): only the last classifier is the head, so the base keeps layers.
    return head[dense[-1]:] if len(head) == len(layers) else head


def block_name(layer_name: str) -> str:
    parts = layer_name.split("_")
    for i, part in enumerate(parts):
        if "block" in part:
            return "_".join(parts[: i + 1])
    return parts[0]


def base_blocks(model) -> list[tuple[str, list]]:
    """Blocks of the base (head excluded), bottom to top, each (name, layers); only blocks with weights."""
    head = {id(l) for l in head_layers(model)}
    blocks: list[tuple[str, list]] = []
    for layer in model.layers:
        if id(layer) in head or type(layer).__name__ == "InputLayer":
            continue
        members = flat_layers(layer) if hasattr(layer, "layers") and layer.layers else [layer]
        for leaf in members:
            name = block_name(leaf.name)
            if blocks and blocks[-1][0] == name:
                blocks[-1][1].append(leaf)
            else:
                blocks.append((name, [leaf]))
    return [(n, ls) for n, ls in blocks if any(l.weights for l in ls)]


def _count(weights) -> int:
    import math

    return int(sum(math.prod(w.shape) for w in weights))


def freeze(model, *, until: str | int | None = None, bn: str = "frozen") -> dict[str, Any]:
    """Freeze the base of `model` for fine-tuning and report what trains.

    Args:
        model: a Keras model (nested models are walked).
        until: None freezes the whole base (the head trains); a layer name freezes every layer up to
            and including it; an int k freezes the first k base blocks (negative: all but the last
            -k blocks; 0 unfreezes everything).
        bn: "frozen" keeps every BatchNormalization layer non-trainable, which in Keras 3 also runs
            it in inference mode (moving statistics kept: keras#9522); "train" lets the BN layers of
            the unfrozen part train.
    Returns:
        {"trainable_params", "non_trainable_params", "trainable_layers", "frozen_layers", "frozen_blocks"}.
    """
    if bn not in ("frozen", "train"):
        raise UsageError(f"`bn` must be 'frozen' or 'train'. Received: bn={bn!r}.")
    head = head_layers(model)
    head_ids = {id(l) for l in head}
    blocks = base_blocks(model)
    leaves = [l for l in flat_layers(model) if id(l) not in head_ids]
    if until is None:
        frozen = set(id(l) for l in leaves)
        if not head:
            raise UsageError(f"Model {model.name!r} has no classifier head to train (no trailing Dense layer); "
                             f"pass `until=` a layer name or a block count.")
    elif isinstance(until, str):
        names = [l.name for l in leaves]
        if until not in names:
            raise UsageError(f"`until` must name a layer of the base. Received: until={until!r}. "
                             f"Base layers start {names[:3]} and end {names[-3:]}.")
        stop = names.index(until)
        frozen = set(id(l) for l in leaves[: stop + 1])
    elif isinstance(until, int):
        k = until if until >= 0 else max(0, len(blocks) + until)
        if k > len(blocks):
            raise UsageError(f"`until` may freeze at most the {len(blocks)} base blocks. Received: until={until}.")
        frozen = set(id(l) for _, ls in blocks[:k] for l in ls)
        # Weightless layers between frozen blocks (pooling, activations) need no flag.
    else:
        raise UsageError(f"`until` must be None, a layer name or an int. Received: until={until!r}.")
    model.trainable = True
    for layer in _all_containers(model):
        layer.trainable = True
    for layer in flat_layers(model):
        is_bn = type(layer).__name__ == "BatchNormalization"
        layer.trainable = id(layer) not in frozen and not (is_bn and bn == "frozen" and id(layer) not in head_ids)
    trainable = [l for l in flat_layers(model) if l.trainable and l.weights]
    return {
        "trainable_params": _count(model.trainable_weights),
        "non_trainable_params": _count(model.non_trainable_weights),
        "trainable_layers": len(trainable),
        "frozen_layers": sum(1 for l in flat_layers(model) if not l.trainable and l.weights),
        "frozen_blocks": sum(1 for _, ls in blocks if all(not l.trainable for l in ls if l.weights)),
    }


def _all_containers(model) -> list:
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            out.append(layer)
            out += _all_containers(layer)
    return out


def replace_head(model, num_classes: int, *, dropout: float = 0.0, activation: str | None = "softmax",
                 name: str = "predictions"):
    """A new model: `model`'s base (shared layers, same weights) + a fresh float32 classifier.

    The old classifier (the last Dense of the head and what follows it) is dropped; pooling and
    hidden head layers before it are kept. The softmax runs in float32 under mixed precision.
    """
    import keras

    if not isinstance(num_classes, int) or num_classes < 1:
        raise UsageError(f"`num_classes` must be a positive int. Received: num_classes={num_classes!r}.")
    head = head_layers(model)
    dense_at = [i for i, l in enumerate(head) if type(l).__name__ == "Dense"]
    if not dense_at:
        features = model.output
        if len(features.shape) == 4:
            features = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
    else:
        features = head[dense_at[-1]].input
    x = features
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    x = keras.layers.Dense(num_classes, name=f"{name}_dense" if activation else name, dtype="float32")(x)
    if activation:
        x = keras.layers.Activation(activation, dtype="float32", name=name)(x)
    new = keras.Model(model.inputs, x, name=model.name)
    from zoo.modeldir import attach_meta, get_meta

    meta = get_meta(model)
    meta.pop("labels", None)
    attach_meta(new, meta)
    return new
