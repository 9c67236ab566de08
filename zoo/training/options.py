"""Every fine-tuning choice in one dataclass: the CLI flags and zoo.finetune keywords map 1:1."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from zoo.errors import UsageError

Precision = Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"]
Strategy = Literal["auto", "none", "mirrored", "multiworker"]


@dataclass
class TrainOptions:
    epochs: int = 10  # all stages together (history.csv has this many rows when nothing stops early)
    head_epochs: int | None = None  # stage 1 (frozen base); default: enough epochs for `head_steps` optimizer steps
    head_steps: int = 100  # the default head stage's length in optimizer steps (at most half of `epochs`)
    batch_size: int | None = None  # global batch (split across replicas); default min(32, train images / 8), >= 8
    lr: float | str | None = None  # peak LR (the head stage's, or the only stage's); "find" = LR range test
    finetune_lr: float | None = None  # peak LR of stage 2 (its top block); default lr / 2
    unfreeze: str = "all"  # stage 2: "all", "none" (head only) or N = the top N blocks
    layer_decay: float | None = None  # stage 2: LR multiplier per block below the top (1 = off);
    # default: the bottom block at lr / 100, the top at lr / 2 (fastai's discriminative rates)
    warmup: float = 0.1  # fraction of each stage's steps warming up (one-cycle: up, then cosine down)
    schedule: Literal["onecycle", "constant"] = "onecycle"  # per stage: warm-up + cosine decay, or a fixed LR
    weight_decay: float = 1e-4  # AdamW decoupled weight decay
    optimizer: Literal["adamw", "sgd"] = "adamw"
    label_smoothing: float = 0.1
    bn: Literal["frozen", "train"] = "train"  # stage 2: unfrozen batch norm trains, or stays in inference mode
    dropout: float = 0.2  # before the new classifier (only when a head is created)
    early_stopping: int | None = 5  # patience in epochs on the monitored metric; None = off
    cache_features: Literal["auto", "on", "off"] = "auto"  # stage 1 on precomputed base features
    augment: Literal["none", "light", "strong"] = "light"  # light: small shifts and zoom; strong: + rotation, contrast
    flip: Literal["none", "horizontal", "vertical", "both"] = "none"  # random flips, only where the data allows them
    class_weights: Literal["auto", "none"] = "auto"
    val: str | None = None  # validation folder; else a stratified split of DATA
    val_split: float = 0.2
    seed: int = 0
    weights: str | None = "auto"  # tag | path | None ("auto": zoo.registry.default_weights, via chosen_weights)
    image_size: int | None = None  # square input size; default the model's
    backbone: str | None = None  # for task models that take a backbone (detection, segmentation)
    precision: Precision = "auto"
    xla: bool | None = None  # None: on with a GPU, off on CPU
    strategy: Strategy = "auto"
    nan: Literal["rollback", "stop"] = "rollback"  # what the NaN/Inf guard does
    tensorboard: bool = False
    resume: bool = False
    overwrite: bool = False
    verbose: int = 1  # Keras progress bars: 0 silent, 1 bar, 2 one line per epoch
    task_options: Any = field(default_factory=dict)  # `--opt key=value`; the engine parses it into the task's dataclass
    # Filled by the engine when a run starts (zoo.training.finetune), never given by users:
    arch: str | None = None  # registry name, model directory or "hub:PATH" (None for a keras.Model)
    task: str | None = None
    input_shape: tuple[int, int, int] | None = None  # (H, W, C) the model takes
    replicas: int = 1  # replicas in sync (the global batch is split across them)
    workdir: str | None = None  # OUT/checkpoint: where resumable state and caches live

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise UsageError(f"`epochs` must be >= 1. Received: epochs={self.epochs}.")
        if self.head_epochs is not None and not 0 <= self.head_epochs <= self.epochs:
            raise UsageError(f"`head_epochs` must be between 0 and epochs={self.epochs}. Received: {self.head_epochs}.")
        if isinstance(self.lr, str):
            if self.lr.lower() != "find":
                raise UsageError(f"`lr` must be a positive number or 'find'. Received: lr={self.lr!r}.")
            self.lr = "find"
        elif self.lr is not None and not self.lr > 0:
            raise UsageError(f"`lr` must be a positive number or 'find'. Received: lr={self.lr!r}.")
        if self.head_steps < 1:
            raise UsageError(f"`head_steps` must be >= 1. Received: head_steps={self.head_steps}.")
        if self.batch_size is not None and self.batch_size < 1:
            raise UsageError(f"`batch_size` must be >= 1. Received: batch_size={self.batch_size}.")
        if not 0 <= self.val_split < 1:
            raise UsageError(f"`val_split` must be in [0, 1). Received: val_split={self.val_split}.")
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise UsageError(f"`layer_decay` must be in (0, 1]. Received: layer_decay={self.layer_decay}.")
        if not 0 <= self.label_smoothing < 1:
            raise UsageError(f"`label_smoothing` must be in [0, 1). Received: {self.label_smoothing}.")
        u = str(self.unfreeze).lower()
        if u not in ("all", "none") and not (u.isdigit() and int(u) > 0):
            raise UsageError(f"`unfreeze` must be 'all', 'none' or a positive number of top blocks. Received: {self.unfreeze!r}.")
        self.unfreeze = u
        for name in ("precision", "strategy", "nan", "bn", "cache_features", "augment", "flip", "class_weights",
                     "optimizer", "schedule"):
            allowed = _choices(name)
            if getattr(self, name) not in allowed:
                raise UsageError(f"`{name}` must be one of {', '.join(allowed)}. Received: {name}={getattr(self, name)!r}.")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _choices(name: str) -> tuple[str, ...]:
    from typing import get_args, get_type_hints

    return get_args(get_type_hints(TrainOptions)[name])


def chosen_weights(name: str, choice: Any) -> str | None:
    """The weights to build registry model `name` with, for a user's choice: None / "none" ->
    None (random), "auto" -> zoo.registry.default_weights(name), anything else (a tag or a path)
    as given. Every "auto" (TrainOptions.weights, a task's backbone weights) resolves here."""
    if choice is None or str(choice).lower() == "none":
        return None
    if choice == "auto":
        from zoo.registry import default_weights

        return default_weights(name)
    return str(choice)


RUNTIME_FIELDS = ("arch", "task", "input_shape", "replicas", "workdir")


def make_options(**kwargs: Any) -> TrainOptions:
    """TrainOptions from keywords; an unknown keyword names the valid ones."""
    known = {f.name for f in fields(TrainOptions)} - set(RUNTIME_FIELDS)
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise UsageError(f"Unknown fine-tuning option(s) {', '.join(unknown)}. Valid: {', '.join(sorted(known))}.")
    return TrainOptions(**kwargs)
