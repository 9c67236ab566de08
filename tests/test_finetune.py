"""zoo.finetune end to end: the defaults on real digits, transfer beats scratch on a tight budget, the model
directory, evaluate keys."""

from __future__ import annotations

import json

import pytest

from helpers import history_epochs, write_digits, zoo_cli

# Transfer against scratch on one tight budget: 2 epochs over scikit-learn's digits (1,797 images, 20%
# validation). With the default 15 epochs both reach ~0.97: there the defaults are tested, below.
# No head-only stage: LeNet's head is most of its weights, so both runs train everything, the
# pretrained one with layer-wise decay from its Fashion-MNIST features.
BUDGET = dict(epochs=2, head_epochs=0, lr=3e-3, finetune_lr=3e-3, layer_decay=0.8, warmup=0.0, batch_size=16,
              augment="none", verbose=0)


@pytest.mark.slow
def test_finetuning_fashion_lenet_beats_scratch_on_digits(tmp_path):
    import zoo

    data = write_digits(tmp_path / "digits")
    scores = {}
    for weights in ("fashion_mnist", None):
        out = tmp_path / f"out_{weights}"
        zoo.finetune("lenet5", data, out=out, weights=weights, **BUDGET)
        scores[weights] = json.loads((out / "metadata.json").read_text())["metrics"]["accuracy"]
    assert scores["fashion_mnist"] >= 0.95, scores
    assert scores["fashion_mnist"] > scores[None], scores


@pytest.mark.slow
def test_defaults_fashion_lenet_on_held_out_digits(tmp_path):
    """The default recipe, nothing but the epochs, from lenet5's default weights (fashion_mnist):
    0.95 on 297 digits it never saw."""
    import zoo

    data = write_digits(tmp_path / "digits", limit=1500)
    held_out = write_digits(tmp_path / "held_out", offset=1500)
    zoo.finetune("lenet5", data, out=tmp_path / "out", epochs=15)
    assert zoo.evaluate(tmp_path / "out", held_out)["accuracy"] >= 0.95


def test_model_directory_and_evaluate_keys(tmp_path):
    import zoo

    data = write_digits(tmp_path / "d", per_class=10, classes=range(4))
    out = tmp_path / "out"
    model = zoo.finetune("lenet5", data, out=out, weights=None, epochs=2, batch_size=8, verbose=0, augment="light")
    for name in ("model.keras", "metadata.json", "history.csv", "curves.png", "confusion_matrix.png"):
        assert (out / name).exists(), name
    assert not (out / "checkpoint").exists()
    assert history_epochs(out) == [1, 2]
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["labels"] == ["0", "1", "2", "3"] and meta["task"] == "classification"
    assert meta["precision"] == "float32" and meta["strategy"]["name"] == "none"
    assert meta["data"]["train"] + meta["data"]["val"] == 40 and meta["data"]["skipped"] == 0
    assert meta["preprocessing"]["resize"] == "squash"
    assert 0 <= meta["metrics"]["accuracy"] <= 1
    scores = zoo.evaluate(out, data)
    for key in ("accuracy", "top5_accuracy", "per_class", "confusion_matrix", "labels", "num_images", "macro_f1"):
        assert key in scores, key
    assert scores["num_images"] == 40 and sum(map(sum, scores["confusion_matrix"])) == 40
    assert set(scores["per_class"]["2"]) == {"precision", "recall", "f1", "support"}
    assert scores["top5_accuracy"] == 1.0  # 4 classes: the truth is always in the top 5
    assert model.output_shape == (None, 4)


@pytest.mark.slow
def test_cli_finetune_then_evaluate_predict_and_export(tmp_path):
    data = write_digits(tmp_path / "d", per_class=6, classes=range(3))
    out = tmp_path / "out"
    result = zoo_cli("finetune", "lenet5", str(data), "--out", str(out), "--weights", "none", "--epochs", "1",
                     "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    ev = zoo_cli("evaluate", str(out), str(data), "--json")
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert json.loads(ev.stdout)["num_images"] == 18
    image = next((data / "1").iterdir())
    pred = zoo_cli("predict", str(image), "--model", str(out), "--format", "jsonl")
    assert pred.returncode == 0, pred.stderr[-2000:]
    record = json.loads(pred.stdout.splitlines()[0])
    assert record["ok"] and record["predictions"][0]["label"] in ("0", "1", "2")
    exp = zoo_cli("export", str(out), "--format", "savedmodel", "--out", str(tmp_path / "sm"))
    assert exp.returncode == 0, exp.stderr[-2000:]
    assert (tmp_path / "sm" / "saved_model.pb").is_file()
