"""Training stages: what is frozen, at which learning rate, for how many epochs.

The default recipe (timm / the Keras transfer-learning guide, made automatic):
  1. "head": the base frozen (batch norm in inference mode), only the head trains, at `lr`;
     on precomputed features when nothing is augmented (zoo.training.features).
  2. "finetune": the top `unfreeze` blocks (or all) train at `finetune_lr` (default lr / 10),
     each block below the top at `layer_decay` times the LR of the block above.
Training from scratch (no weights) is one stage, everything trainable. `--epochs` counts both.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Stage:
    name: str
    epochs: int
    lr: float
    freeze: dict | None = None  # kwargs of zoo.freeze (until, bn); None = everything trains
    layer_decay: float = 1.0  # 1 = every trainable variable at the stage LR
    cache: bool = False  # may train the head on cached base features (decided by the trainer)


def default_stages(opts, *, pretrained: bool, has_head: bool) -> list[Stage]:
    if not pretrained or not has_head:
        return [Stage("train", opts.epochs, opts.lr)]
    if opts.unfreeze == "none":
        return [Stage("head", opts.epochs, opts.lr, freeze={"until": None, "bn": opts.bn}, cache=True)]
    head_epochs = opts.head_epochs if opts.head_epochs is not None else max(1, opts.epochs // 3)
    head_epochs = min(head_epochs, opts.epochs)
    stages = []
    if head_epochs:
        stages.append(Stage("head", head_epochs, opts.lr, freeze={"until": None, "bn": opts.bn}, cache=True))
    rest = opts.epochs - head_epochs
    if rest:
        until = 0 if opts.unfreeze == "all" else -int(opts.unfreeze)
        lr = opts.finetune_lr if opts.finetune_lr is not None else opts.lr / 10
        stages.append(Stage("finetune", rest, lr, freeze={"until": until, "bn": opts.bn}, layer_decay=opts.layer_decay))
    return stages
