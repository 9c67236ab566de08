"""One default-weights rule (zoo.registry.default_weights) behind every "which weights when none are named"."""

from __future__ import annotations

import pytest

import zoo
from zoo.errors import UsageError
from zoo.registry import default_weights
from zoo.training.options import TrainOptions, chosen_weights


@pytest.mark.parametrize("name", zoo.list_models())
def test_auto_is_the_default_weights_rule(name):
    tags = [row["tag"] for row in zoo.info(name)["weights"]]
    expected = "imagenet" if "imagenet" in tags else (tags[0] if tags else None)
    assert default_weights(name) == expected
    assert chosen_weights(name, "auto") == expected
    assert chosen_weights(name, TrainOptions().weights) == expected  # the fine-tuning default is "auto"


def test_explicit_choices_pass_through():
    assert chosen_weights("resnet50", None) is None
    assert chosen_weights("resnet50", "none") is None and chosen_weights("resnet50", "None") is None
    assert chosen_weights("resnet50", "tv_in1k") == "tv_in1k"
    assert chosen_weights("resnet50", "/w/mine.safetensors") == "/w/mine.safetensors"


def test_evaluate_refuses_a_registry_model_without_pretrained_weights(tmp_path):
    with pytest.raises(UsageError, match="no pretrained weights to evaluate"):
        zoo.evaluate("yolo_lite", tmp_path)
