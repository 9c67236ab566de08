"""zoo.finetune end to end: the defaults transfer to real digits and beat scratch, the model directory, evaluate keys."""

from __future__ import annotations

import json

import pytest

from _finetune_helpers import history_epochs, write_digits, zoo_cli

def _has_fashion_weights() -> bool:
    from zoo.pretrained.manifest import tags_for

    return "fashion_mnist" in tags_for("lenet5")


@pytest.mark.slow
@pytest.mark.skipif(not _has_fashion_weights(), reason="lenet5.fashion_mnist weights are not in the manifest")
def test_defaults_fashion_lenet_on_digits_beats_scratch(tmp_path):
    """The default recipe, nothing but the epochs: lenet5's default weights (fashion_mnist) reach 0.95
    on digits it never saw, and beat the same recipe from scratch."""
    import zoo

    data = write_digits(tmp_path / "digits", limit=1500)
    held_out = write_digits(tmp_path / "held_out", offset=1500)  # the last 297 digits
    scores = {}
    for weights in ("auto", None):
        out = tmp_path / f"out_{weights}"
        zoo.finetune("lenet5", data, out=out, epochs=15, **({} if weights == "auto" else {"weights": None}))
        scores[weights] = zoo.evaluate(out, held_out)["accuracy"]
    assert scores["auto"] >= 0.95, scores
    assert scores["auto"] > scores[None], scores


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
    from zoo.cli import COMMANDS

    import importlib.util

    if importlib.util.find_spec("zoo.cli.export") is None:
        pytest.skip("zoo export is not in this build yet")
    exp = zoo_cli("export", str(out), "--format", "savedmodel", "--out", str(tmp_path / "sm"))
    assert exp.returncode == 0, exp.stderr[-2000:]
    assert COMMANDS
