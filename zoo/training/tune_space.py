"""What `zoo tune` searches: the space of zoo finetune options and the objective, checked before
anything starts (pure Python: no TensorFlow, no KerasTuner).

A space maps a TrainOptions field to one spec, written as on the command line:

    lr=1e-4:1e-2:log      a range (float or int, as the option is), sampled log-uniformly
    layer_decay=0.5:1     a range sampled uniformly (`:linear` may be written)
    unfreeze=1,2,all      a choice
    augment=light         one value: fixed for every trial

In Python a list or tuple is a choice and any other non-string value is fixed. Each task has a
default space (DEFAULT_SPACE); a user's space overrides it key by key.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import fields
from typing import Any, Literal

from zoo.errors import UsageError
from zoo.training.options import RUNTIME_FIELDS, TrainOptions, make_options

# Fields that are not fine-tuning choices: the run's bookkeeping, and `epochs` (the trial budget, --epochs).
NOT_SEARCHABLE = set(RUNTIME_FIELDS) | {"resume", "overwrite", "verbose", "task_options", "epochs"}

# The knobs that matter most when fine-tuning, with ranges that hold for most data (timm / fastai
# practice): the head's and the body's peak learning rates, how deep to unfreeze, layer-wise decay,
# regularisation, augmentation and batch size. The body's LR spans large pretrained networks
# (1e-5..1e-4) and small ones, which need 1e-3..1e-2 to move in a few epochs.
_COMMON = {
    "lr": "1e-4:1e-2:log",
    "finetune_lr": "1e-5:1e-2:log",
    "unfreeze": "1,2,all",
    "layer_decay": "0.5:1.0",
    "label_smoothing": "0:0.2",
    "augment": "none,light,strong",
    "batch_size": "16,32,64",
    "weight_decay": "1e-5:1e-3:log",
}
# Per task, the options its training reads: detection and segmentation losses take no label
# smoothing; a captioner trains its decoder in one stage (no unfreeze, layer decay or second LR).
DEFAULT_SPACE: dict[str, dict[str, str]] = {
    "classification": dict(_COMMON),
    "detection": {k: v for k, v in _COMMON.items() if k != "label_smoothing"},
    "segmentation": {k: v for k, v in _COMMON.items() if k != "label_smoothing"},
    "captioning": {k: _COMMON[k] for k in ("lr", "batch_size", "weight_decay")},
}

# The metric a trial is scored by, per task (a key of the trial's metadata.json "metrics"; all
# are measured on the validation data and higher is better), and the others --objective may name.
DEFAULT_OBJECTIVE = {"classification": "accuracy", "detection": "map", "segmentation": "miou",
                     "captioning": "bleu4"}
TASK_METRICS = {
    "classification": ("accuracy", "top5_accuracy", "macro_f1"),
    "detection": ("map", "map50", "voc07_map"),
    "segmentation": ("miou", "pixel_accuracy", "mean_accuracy"),
    "captioning": ("bleu1", "bleu2", "bleu3", "bleu4", "cider"),
}
# Options that set the validation data: one value for every trial, or scores would not compare.
SAME_FOR_ALL = ("seed", "val", "val_split")
LOSS = "val_loss"  # from history.csv, the best epoch's; lower is better


def searchable() -> list[str]:
    return sorted(f.name for f in fields(TrainOptions) if f.name not in NOT_SEARCHABLE)


def objective_for(task: str, name: str | None) -> tuple[str, str]:
    """(metric name, "max" | "min"); a name the task does not report names the ones it does."""
    if name is None:
        return DEFAULT_OBJECTIVE.get(task, LOSS), "max" if task in DEFAULT_OBJECTIVE else "min"
    key = name.strip().lower()
    if key in ("loss", LOSS):
        return LOSS, "min"
    known = TASK_METRICS.get(task, ())
    bare = key.removeprefix("val_")
    if bare in known:
        return bare, "max"
    valid = ", ".join(known + (LOSS,))
    raise UsageError(f"--objective must be a metric that {task} trials report: {valid}. Received: {name!r}.")


def parse_space(raw: dict[str, Any] | None, *, task: str, fixed: dict[str, Any], epochs: int) -> dict[str, dict]:
    """The task's default space overridden by `raw`, each entry a JSON-able spec:
    {"kind": "float"|"int", "min", "max", "log"} | {"kind": "choice", "values"} | {"kind": "fixed", "value"}.
    Every value is checked as a TrainOptions value beside the `fixed` options, so a bad one fails here."""
    space: dict[str, Any] = dict(DEFAULT_SPACE.get(task, _COMMON))
    for key, value in (raw or {}).items():
        name = str(key).strip().replace("-", "_")
        if name in fixed:
            raise UsageError(f"`{name}` is both searched (--space) and fixed; give it once.")
        space[name] = value
    for name in fixed:  # a fixed option leaves the default space
        space.pop(name, None)
    return {name: _spec(name, value, fixed, epochs) for name, value in space.items()}


def _spec(name: str, value: Any, fixed: dict[str, Any], epochs: int) -> dict:
    shown = f"--space {name}={value}"
    if name not in {f.name for f in fields(TrainOptions)}:
        raise UsageError(f"zoo finetune has no option {name!r} ({shown}). Searchable: {', '.join(searchable())}.")
    if name in NOT_SEARCHABLE:
        why = "the trial budget is --epochs" if name == "epochs" else "it is not a fine-tuning choice"
        raise UsageError(f"`{name}` cannot be searched ({why}). Searchable: {', '.join(searchable())}.")
    kind, optional, _ = _field_type(name)
    if isinstance(value, (list, tuple)):
        spec = {"kind": "choice", "values": [_typed(name, v, kind, optional, shown) for v in value]}
    elif not isinstance(value, str):
        spec = {"kind": "fixed", "value": _typed(name, value, kind, optional, shown)}
    else:
        spec = _parse_text(name, value.strip(), kind, optional, shown)
    if name in SAME_FOR_ALL and spec["kind"] != "fixed":
        raise UsageError(f"{shown}: `{name}` sets the validation data, so it takes one value for every trial "
                         f"(different ones would make the scores incomparable).")
    if spec["kind"] == "choice" and not spec["values"]:
        raise UsageError(f"{shown}: no values. Give a range lo:hi[:log] or a choice a,b,c.")
    if spec["kind"] == "choice":
        values = spec["values"]
    else:
        values = [spec["value"]] if spec["kind"] == "fixed" else [spec["min"], spec["max"]]
    if spec["kind"] == "choice" and len(set(map(str, values))) != len(values):
        raise UsageError(f"{shown}: a value is listed twice.")
    for v in values:
        try:
            make_options(epochs=epochs, **{**fixed, name: v})
        except UsageError as exc:
            raise UsageError(f"{shown}: {exc}") from None
    return spec


def _parse_text(name: str, text: str, kind: str, optional: bool, shown: str) -> dict:
    if not text:
        raise UsageError(f"{shown}: no values. Give a range lo:hi[:log] or a choice a,b,c.")
    if ":" in text:
        parts = [p.strip() for p in text.split(":")]
        scale = parts[2].lower() if len(parts) == 3 else "linear"
        if len(parts) not in (2, 3) or scale not in ("log", "linear"):
            raise UsageError(f"{shown}: a range is lo:hi or lo:hi:log (or :linear).")
        if kind not in ("int", "float"):
            raise UsageError(f"{shown}: `{name}` is not numeric, so it takes a choice a,b,c, not a range.")
        lo, hi = (_typed(name, p, kind, False, shown) for p in parts[:2])
        if not lo < hi:
            raise UsageError(f"{shown}: the range needs lo < hi.")
        if scale == "log" and lo <= 0:
            raise UsageError(f"{shown}: a log range needs lo > 0.")
        return {"kind": kind, "min": lo, "max": hi, "log": scale == "log"}
    if "," in text:
        tokens = [t.strip() for t in text.split(",")]
        if not all(tokens):
            raise UsageError(f"{shown}: an empty value in the list.")
        return {"kind": "choice", "values": [_typed(name, t, kind, optional, shown) for t in tokens]}
    return {"kind": "fixed", "value": _typed(name, text, kind, optional, shown)}


def _field_type(name: str) -> tuple[str, bool, tuple]:
    """("int" | "float" | "bool" | "str", accepts None, Literal choices) of a TrainOptions field."""
    hint = typing.get_type_hints(TrainOptions)[name]
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
        else (hint,)
    optional = type(None) in args
    base = next(a for a in args if a is not type(None))
    if typing.get_origin(base) is Literal:
        return "str", optional, typing.get_args(base)
    return {int: "int", float: "float", bool: "bool"}.get(base, "str"), optional, ()


def _typed(name: str, value: Any, kind: str, optional: bool, shown: str) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if optional and text.lower() == "none":
            return None
        try:
            if kind == "int":
                return int(text)
            if kind == "float":
                number = float(text)
                if not math.isfinite(number):
                    raise ValueError(text)
                return number
        except ValueError:
            raise UsageError(f"{shown}: {text!r} is not a valid {kind} for `{name}`.") from None
        if kind == "bool":
            if text.lower() in ("true", "1", "yes", "on"):
                return True
            if text.lower() in ("false", "0", "no", "off"):
                return False
            raise UsageError(f"{shown}: {text!r} is not true or false.")
        return text
    if value is None and optional:
        return None
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "str" and isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    raise UsageError(f"{shown}: {value!r} is not a valid {kind} for `{name}`.")


def parse_space_args(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`--space` words (each KEY=VALUES, several per word when separated by spaces) -> {key: text}."""
    out: dict[str, str] = {}
    words = [w for item in items for w in item.split()]
    if not words:
        raise UsageError("--space is empty. Give KEY=VALUES, e.g. --space lr=1e-4:1e-2:log unfreeze=1,2,all.")
    for word in words:
        key, sep, value = word.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key or not value.strip():
            raise UsageError(f"--space takes KEY=VALUES (a range lo:hi[:log], a choice a,b,c or one value). "
                             f"Received: {word!r}.")
        if key in out:
            raise UsageError(f"--space gives {key!r} twice.")
        out[key] = value.strip()
    return out


def to_option(name: str, value: Any) -> Any:
    """A value as KerasTuner holds it back to the option's value: a choice mixing types (None
    among numbers) travels as strings, which the option's type converts back."""
    if not isinstance(value, str):
        return value
    kind, optional, _ = _field_type(name)
    return _typed(name, value, kind, optional, f"{name}={value}")
