"""Layer-wise learning-rate decay for any Keras 3 optimizer (Keras has none: keras#8850, #21741).

`apply_layer_decay(optimizer, scales)` makes `optimizer` multiply its learning rate by a per-variable
factor inside `update_step` -- the one place every Keras 3 optimizer (Adam, AdamW, SGD...) applies
the learning rate to a variable, under tf.distribute too. Scaling the gradient instead would be
undone by Adam's normalisation; scaling the learning rate is not. The optimizer keeps its class,
so it saves and reloads like any other.
"""

from __future__ import annotations


def decay_scales(model, *, decay: float, head_scale: float = 1.0) -> dict[str, float]:
    """{variable path: multiplier}: head 1, top base block `decay`, the next `decay**2`, ..."""
    from zoo.training.freeze import base_blocks, head_layers

    scales: dict[str, float] = {}
    for layer in head_layers(model):
        for v in layer.weights:
            scales[v.path] = head_scale
    blocks = base_blocks(model)
    for depth, (_, layers) in enumerate(reversed(blocks), start=1):
        for layer in layers:
            for v in layer.weights:
                scales[v.path] = float(decay) ** depth
    return scales


def apply_layer_decay(optimizer, scales: dict[str, float]):
    """Patch `optimizer` so variable v moves with learning_rate * scales[v.path] (1 if absent)."""
    base_update = optimizer.update_step

    def update_step(gradient, variable, learning_rate):
        # The index maps a distributed component back to the optimizer's own variable list.
        index = optimizer._get_variable_index(variable)
        scale = scales.get(optimizer._trainable_variables[index].path, 1.0)
        if scale != 1.0:
            learning_rate = learning_rate * scale
        return base_update(gradient, variable, learning_rate)

    optimizer.update_step = update_step
    object.__setattr__(optimizer, "_zoo_lr_scales", dict(scales))
    return optimizer
