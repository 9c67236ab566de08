"""Training stages: what is frozen, at which learning rate, for how many epochs.

The default recipe (fastai's `fine_tune`, made to hold on tiny data; every number is a flag):
  1. "head": the base frozen (batch norm in inference mode), only the head trains, one-cycle at
     `lr`; long enough to take `head_steps` optimizer steps (a handful of steps leaves a new
     classifier near chance on small data), at most half the epochs, at least one.
  2. "finetune": the top `unfreeze` blocks (or all) train, one-cycle at `finetune_lr` (lr / 2) for
     the top block, each block below at `layer_decay` times the block above, so that the bottom
     block runs at lr / 100. Their batch norm layers train too (`bn="train"`, as fastai and timm):
     when the new images differ from the pretraining ones (colours, backgrounds), statistics kept
     from the old data misnormalise them. Measured on the domain-shift shapes of
     scripts/bench_recipes.py: 0.688 vs 0.513 (20 per class, 3 seeds), 0.900 vs 0.665 (100 per class).
Training from scratch (no weights) is one stage, everything trainable. `--epochs` counts both.
Early stopping (zoo.training.trainer) waits for the second half of a stage, and an equal accuracy
with a lower validation loss counts as progress, so a small run is not cut short.
The batch size follows the data: min(32, train images / 8), at least 8, so small data still
gets enough optimizer steps per epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_LR = 5e-3  # peak LR when --lr is not given (measured: scripts/bench_recipes.py)
FINETUNE_FACTOR = 0.5  # stage 2's top block at lr * this ...
BOTTOM_FACTOR = 0.01  # ... and its bottom block at lr * this
MIN_STEPS = 50  # a stage with fewer optimizer steps than this gets a warning


@dataclass
class Stage:
    name: str
    epochs: int
    lr: float
    freeze: dict | None = None  # kwargs of zoo.freeze (until, bn); None = everything trains
    layer_decay: float = 1.0  # 1 = every trainable variable at the stage LR
    cache: bool = False  # may train the head on cached base features (decided by the trainer)


def auto_batch_size(num_train: int, replicas: int = 1) -> int:
    """min(32, num_train / 8), at least 8 (and at least one image per replica)."""
    return max(8, replicas, min(32, num_train // 8))


def steps_per_epoch(num_train: int, batch_size: int) -> int:
    return max(1, math.ceil(num_train / batch_size))


def base_lr(opts) -> float:
    """The peak LR to use: the user's, or the default (a finished LR range test replaces "find")."""
    return float(opts.lr) if isinstance(opts.lr, (int, float)) else DEFAULT_LR


def auto_layer_decay(num_blocks: int, *, top_lr_factor: float = FINETUNE_FACTOR) -> float:
    """The per-block factor that takes the top block's lr * top_lr_factor down to lr / 100 at the bottom."""
    if num_blocks < 1:
        return 1.0
    return float(min(1.0, (BOTTOM_FACTOR / top_lr_factor) ** (1.0 / num_blocks)))


def default_stages(opts, *, pretrained: bool, has_head: bool, num_train: int | None = None,
                   num_blocks: int = 0) -> list[Stage]:
    """The stages of a run (see the module docstring). `num_blocks`: base blocks of the model."""
    lr = base_lr(opts)
    if not pretrained or not has_head:
        return [Stage("train", opts.epochs, lr)]
    frozen = {"until": None, "bn": opts.bn}
    if opts.unfreeze == "none":
        return [Stage("head", opts.epochs, lr, freeze=frozen, cache=True)]
    head_epochs = opts.head_epochs
    if head_epochs is None:
        batch = opts.batch_size or auto_batch_size(num_train or 0)
        per_epoch = steps_per_epoch(num_train or 1, batch)
        head_epochs = max(1, min(math.ceil(opts.head_steps / per_epoch), opts.epochs // 2))
    head_epochs = min(head_epochs, opts.epochs)
    stages = []
    if head_epochs:
        stages.append(Stage("head", head_epochs, lr, freeze=frozen, cache=True))
    rest = opts.epochs - head_epochs
    if rest:
        until = 0 if opts.unfreeze == "all" else -int(opts.unfreeze)
        top = opts.finetune_lr if opts.finetune_lr is not None else lr * FINETUNE_FACTOR
        depth = num_blocks if opts.unfreeze == "all" else min(num_blocks, int(opts.unfreeze))
        decay = opts.layer_decay if opts.layer_decay is not None else auto_layer_decay(
            depth, top_lr_factor=top / lr)
        stages.append(Stage("finetune", rest, top, freeze={"until": until, "bn": opts.bn}, layer_decay=decay))
    return stages


def model_stages(model, opts, *, num_train: int | None) -> list[Stage]:
    """default_stages for `model`: pretrained when its metadata names weights or a parent run."""
    from zoo.modeldir import get_meta
    from zoo.training.freeze import base_blocks, head_layers

    meta = get_meta(model)
    pretrained = bool(meta.get("weights", {}).get("origin")) or bool(meta.get("finetuned_from"))
    return default_stages(opts, pretrained=pretrained, has_head=bool(head_layers(model)), num_train=num_train,
                          num_blocks=len(base_blocks(model)))


def short_stages(stages: list[Stage], *, num_train: int, batch_size: int) -> list[str]:
    """Warnings for stages with fewer than MIN_STEPS optimizer steps (what to change)."""
    per_epoch = steps_per_epoch(num_train, batch_size)
    out = []
    for stage in stages:
        steps = per_epoch * stage.epochs
        if steps < MIN_STEPS:
            out.append(f"stage {stage.name!r} has only {steps} optimizer steps ({stage.epochs} epochs x {per_epoch} "
                       f"batches of {batch_size}); fewer than {MIN_STEPS} rarely train a layer well. "
                       f"Raise --epochs or lower --batch-size.")
    return out


def image_stats(data, *, limit: int = 64) -> dict | None:
    """{"side": median longer side, "colour": any colour image} of up to `limit` images under the
    folder `data` (headers only), or None when it holds none (a CSV, an unreadable folder)."""
    import os
    from pathlib import Path

    from PIL import Image

    from zoo.data.images import IMAGE_EXTENSIONS

    root = Path(data)
    if not root.is_dir():
        return None
    sides, colour = [], False
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            try:
                with Image.open(Path(folder) / name) as im:
                    sides.append(max(im.size))
                    colour = colour or im.mode not in ("1", "L", "LA", "I", "I;16", "F")
            except Exception:  # an unreadable file: the data reader will report it
                continue
            if len(sides) >= limit:
                break
        if len(sides) >= limit:
            break
    if not sides:
        return None
    return {"side": int(sorted(sides)[len(sides) // 2]), "colour": colour}


def native_size(data, arch: str) -> int | None:
    """The input side for training `arch` from scratch on `data`: the images' own (median) side,
    rounded up to a multiple of 32, between 32 and the model's default. Upsampling 64-pixel images
    to 224 adds no information and costs 12 times the compute. None keeps the model's default."""
    from zoo.registry import get_spec

    stats = image_stats(data)
    default = get_spec(arch).input_shape[0]
    if stats is None or not default:
        return None
    side = min(int(default), max(32, -(-stats["side"] // 32) * 32))
    return side if side != default else None
