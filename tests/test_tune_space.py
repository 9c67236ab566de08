"""zoo tune's search space and objective: parsed and checked before anything starts (no TensorFlow)."""

from __future__ import annotations

import pytest

from zoo.errors import UsageError
from zoo.training.tune_space import (DEFAULT_SPACE, objective_for, parse_space, parse_space_args, searchable,
                                     to_option)


def space(raw=None, task="classification", fixed=None, epochs=4):
    return parse_space(raw, task=task, fixed=fixed or {}, epochs=epochs)


def test_default_space_covers_the_finetune_knobs_per_task():
    parsed = space()
    assert set(parsed) == {"lr", "finetune_lr", "unfreeze", "layer_decay", "label_smoothing", "augment", "batch_size",
                           "weight_decay"}
    assert parsed["lr"] == {"kind": "float", "min": 1e-4, "max": 1e-2, "log": True}
    assert parsed["unfreeze"] == {"kind": "choice", "values": ["1", "2", "all"]}
    assert parsed["batch_size"] == {"kind": "choice", "values": [16, 32, 64]}
    assert "label_smoothing" not in space(task="detection")
    assert set(space(task="captioning")) == {"lr", "batch_size", "weight_decay"}
    for task, default in DEFAULT_SPACE.items():
        assert set(space(task=task)) == set(default)


def test_cli_words_override_the_default_key_by_key():
    raw = parse_space_args(["lr=1e-4:1e-2:log unfreeze=1,2,all", "batch_size=8:64", "augment=none"])
    parsed = space(raw)
    assert parsed["lr"] == {"kind": "float", "min": 1e-4, "max": 1e-2, "log": True}
    assert parsed["batch_size"] == {"kind": "int", "min": 8, "max": 64, "log": False}
    assert parsed["augment"] == {"kind": "fixed", "value": "none"}
    assert parsed["layer_decay"]["kind"] == "float"  # untouched default


def test_python_values_lists_are_choices_scalars_fixed():
    parsed = space({"finetune_lr": [None, 1e-4], "dropout": 0.3, "optimizer": ["adamw", "sgd"]})
    assert parsed["finetune_lr"] == {"kind": "choice", "values": [None, 1e-4]}
    assert parsed["dropout"] == {"kind": "fixed", "value": 0.3}
    assert to_option("finetune_lr", "none") is None and to_option("unfreeze", "2") == "2"
    assert to_option("batch_size", "16") == 16


def test_a_fixed_option_leaves_the_space_and_cannot_be_searched_too():
    assert "augment" not in space(fixed={"augment": "none"})
    with pytest.raises(UsageError, match="both searched"):
        space({"lr": "1e-3,1e-2"}, fixed={"lr": 1e-3})


@pytest.mark.parametrize("words, match", [
    ([""], "empty"),
    (["  "], "empty"),
    (["lr"], "KEY=VALUES"),
    (["lr="], "KEY=VALUES"),
    (["=1,2"], "KEY=VALUES"),
    (["lr=1e-3 lr=1e-2"], "twice"),
])
def test_malformed_words(words, match):
    with pytest.raises(UsageError, match=match):
        parse_space_args(words)


@pytest.mark.parametrize("raw, match", [
    ({"lr": "1e-2:1e-4"}, "lo < hi"),
    ({"lr": "0:1e-2:log"}, "lo > 0"),
    ({"lr": "1e-4:1e-2:cubic"}, "lo:hi:log"),
    ({"lr": "1:2:3:4"}, "lo:hi:log"),
    ({"lr": "a:b"}, "not a valid float"),
    ({"lr": "nan,1e-3"}, "not a valid float"),
    ({"batch_size": "16.5,32"}, "not a valid int"),
    ({"augment": "0:1"}, "not numeric"),
    ({"augment": "light,wild"}, "augment"),
    ({"unfreeze": "1,,2"}, "empty value"),
    ({"unfreeze": "1,1"}, "twice"),
    ({"unfreeze": "-1,2"}, "unfreeze"),
    ({"layer_decay": "0:1"}, r"\(0, 1\]"),
    ({"label_smoothing": "0:1"}, "label_smoothing"),
    ({"foo": "1,2"}, "no option 'foo'"),
    ({"epochs": "1,2"}, "--epochs"),
    ({"task": "detection"}, "cannot be searched"),
    ({"seed": "0,1"}, "validation data"),
    ({"lr": ""}, "no values"),
    ({"lr": []}, "no values"),
])
def test_bad_space(raw, match):
    with pytest.raises(UsageError, match=match):
        space(raw)


def test_head_epochs_checked_against_the_trial_epochs():
    assert space({"head_epochs": "0,1"}, epochs=2)["head_epochs"]["values"] == [0, 1]
    with pytest.raises(UsageError, match="head_epochs"):
        space({"head_epochs": "1,3"}, epochs=2)


def test_searchable_is_the_finetune_options_without_bookkeeping():
    keys = searchable()
    assert {"lr", "unfreeze", "batch_size", "weights", "precision"} <= set(keys)
    assert not {"epochs", "resume", "overwrite", "verbose", "arch", "workdir", "task_options"} & set(keys)


def test_objective_per_task_and_validated():
    assert objective_for("classification", None) == ("accuracy", "max")
    assert objective_for("detection", None) == ("map", "max")
    assert objective_for("segmentation", None) == ("miou", "max")
    assert objective_for("captioning", None) == ("bleu4", "max")
    assert objective_for("classification", "val_accuracy") == ("accuracy", "max")
    assert objective_for("detection", "map50") == ("map50", "max")
    assert objective_for("segmentation", "loss") == ("val_loss", "min")
    with pytest.raises(UsageError, match="accuracy, top5_accuracy, macro_f1, val_loss"):
        objective_for("classification", "map")
