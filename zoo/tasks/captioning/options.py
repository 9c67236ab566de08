"""The captioning task's `--opt key=value` options, parsed once by the engine (zoo.training.task)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal, get_args, get_type_hints

from zoo.errors import UsageError

# Options handed to the captioner's builder when given; None leaves the builder's own default. Show and
# Tell has no attention options and Show, Attend and Tell no pooling: its builder names the ones it lacks.
ARCH_KEYS = ("embed_dim", "units", "dropout", "pooling", "feature", "tiny_width", "attention_dim", "attention_reg",
             "gate")


@dataclass(frozen=True)
class CaptioningOptions:
    min_count: int = 5  # a word enters the vocabulary if training captions use it this often; rarer ones -> [UNK]
    max_length: int = 40  # longest caption kept, in words (longer ones are cut); the data's longest if shorter
    beam_size: int = 3  # default beam width of predict / evaluate, kept in metadata.json (1 = greedy)
    alpha: float = 1.0  # beam-search length normalisation: log_prob / length ** alpha (0 = total log-prob)
    train_backbone: bool | None = None  # None: frozen under pretrained backbone weights, trained from scratch
    embed_dim: int | None = None  # word and image embedding size
    units: int | None = None  # LSTM units
    dropout: float | None = None  # on the LSTM inputs and outputs
    pooling: Literal["avg", "max", "flatten"] | None = None  # feature map -> one vector
    feature: Literal["s4", "s8", "s16", "s32"] | None = None  # which backbone feature map is pooled
    tiny_width: int | None = None  # first conv's filters of the "tiny" test backbone
    attention_dim: int | None = None  # show_attend_tell: hidden size of the attention MLP
    attention_reg: float | None = None  # show_attend_tell: lambda of the doubly stochastic attention regulariser
    gate: bool | None = None  # show_attend_tell: the gating scalar beta on the attended context

    def __post_init__(self) -> None:
        for name in ("min_count", "max_length", "beam_size", "embed_dim", "units", "tiny_width", "attention_dim"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UsageError(f"`{name}` must be a whole number >= 1. Received: {name}={value!r}.")
        if not isinstance(self.alpha, (int, float)) or not math.isfinite(self.alpha):
            raise UsageError(f"`alpha` must be a finite number. Received: alpha={self.alpha!r}.")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise UsageError(f"`dropout` must be in [0, 1). Received: dropout={self.dropout!r}.")
        if self.attention_reg is not None and (isinstance(self.attention_reg, bool) or not isinstance(
                self.attention_reg, (int, float)) or not 0 <= self.attention_reg < math.inf):
            raise UsageError(f"`attention_reg` must be a finite number >= 0. Received: attention_reg={self.attention_reg!r}.")
        for name in ("train_backbone", "gate"):
            if getattr(self, name) not in (None, True, False):
                raise UsageError(f"`{name}` must be true or false. Received: {name}={getattr(self, name)!r}.")
        hints = get_type_hints(CaptioningOptions)
        for name in ("pooling", "feature"):
            allowed = get_args(get_args(hints[name])[0])  # Literal[...] | None -> the Literal's values
            if getattr(self, name) not in (None, *allowed):
                raise UsageError(f"`{name}` must be one of {', '.join(allowed)}. Received: {name}={getattr(self, name)!r}.")

    def arch_options(self) -> dict:
        """The builder options the user set (the rest keep the builder's defaults)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name in ARCH_KEYS and getattr(self, f.name) is not None}
