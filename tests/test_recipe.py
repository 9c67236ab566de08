"""The default fine-tuning recipe: stage lengths in optimizer steps, batch size, learning rates, the LR
range test, progress and warnings; and that the defaults learn (a test of the defaults uses the defaults)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from helpers import write_colours, write_digits, zoo_cli


def _opts(**kw):
    from zoo.training.options import make_options

    return make_options(**{"epochs": 15, **kw})


def test_head_stage_is_long_enough_in_steps_on_tiny_data():
    from zoo.training.recipe import DEFAULT_LR, auto_batch_size, default_stages

    assert auto_batch_size(96) == 12 and auto_batch_size(20) == 8 and auto_batch_size(100_000) == 32
    opts = _opts(batch_size=auto_batch_size(96))
    head, finetune = default_stages(opts, pretrained=True, has_head=True, num_train=96, num_blocks=4)
    assert head.epochs * math.ceil(96 / 12) >= 50  # not a third of the epochs: 5 epochs = 40 steps
    assert head.epochs <= 15 // 2 and head.epochs + finetune.epochs == 15
    assert head.lr == DEFAULT_LR and finetune.lr == DEFAULT_LR / 2
    # discriminative rates: the bottom of 4 blocks at lr / 100
    np.testing.assert_allclose(finetune.lr * finetune.layer_decay ** 4, DEFAULT_LR / 100, rtol=1e-6)
    # plenty of data: one head epoch
    big = default_stages(_opts(batch_size=32), pretrained=True, has_head=True, num_train=50_000, num_blocks=4)
    assert big[0].epochs == 1


def test_every_choice_stays_a_flag():
    from zoo.training.recipe import default_stages

    opts = _opts(lr=1e-2, head_epochs=3, finetune_lr=1e-4, layer_decay=0.9, batch_size=16)
    head, finetune = default_stages(opts, pretrained=True, has_head=True, num_train=96, num_blocks=4)
    assert (head.epochs, head.lr, finetune.epochs, finetune.lr, finetune.layer_decay) == (3, 1e-2, 12, 1e-4, 0.9)
    (only,) = default_stages(_opts(lr=5e-3), pretrained=False, has_head=True, num_train=96)
    assert (only.name, only.epochs, only.lr) == ("train", 15, 5e-3)


@pytest.mark.parametrize("bad", ["fast", -1.0, 0])
def test_lr_must_be_positive_or_find(bad):
    from zoo.errors import UsageError

    with pytest.raises(UsageError, match="positive number or 'find'"):
        _opts(lr=bad)
    assert _opts(lr="FIND").lr == "find"


def test_short_stage_warning_says_what_to_change():
    from zoo.training.recipe import Stage, short_stages

    (warning,) = short_stages([Stage("head", 2, 1e-3), Stage("finetune", 13, 1e-3)], num_train=48, batch_size=8)
    assert "'head' has only 12 optimizer steps" in warning and "--epochs" in warning


def test_lr_suggestion_is_a_decade_below_the_lowest_loss():
    from zoo.training.lr_find import suggest

    lrs = list(np.geomspace(1e-7, 10, 100))
    losses = [2.0 - 1.5 * math.exp(-((math.log10(r) + 2) ** 2)) for r in lrs]  # lowest at 1e-2
    assert suggest(lrs, losses) == pytest.approx(1e-3, rel=0.2)
    assert suggest(lrs, [2.0 + 0.01 * i for i in range(100)]) is None  # never fell


def test_native_size_for_from_scratch_follows_the_images(tmp_path):
    from zoo.training.recipe import image_stats, native_size

    data = write_colours(tmp_path / "c", per_class=2, size=64)
    assert image_stats(data) == {"side": 64, "colour": True}
    assert native_size(data, "resnet18") == 64
    assert native_size(tmp_path / "missing", "resnet18") is None


def test_curves_mark_stages_best_epoch_and_lr(tmp_path):
    from zoo.training.plots import draw_curves

    rows = [{"epoch": e, "stage": "head" if e <= 2 else "finetune", "lr": 1e-3 / e, "loss": 1 / e,
             "accuracy": e / 5, "val_loss": 1.2 / e, "val_accuracy": e / 6} for e in range(1, 6)]
    path = draw_curves(rows, tmp_path / "curves.png", best_epoch=4)
    from PIL import Image

    assert Image.open(path).size[0] > Image.open(path).size[1] * 2  # loss, accuracy and learning-rate panels


# --------------------------------------------------------------------------- the defaults learn


def _fresh_accuracy(out, data) -> float:
    import zoo

    return zoo.evaluate(out, data)["accuracy"]


@pytest.mark.slow
def test_defaults_lenet5_on_three_colours(tmp_path):
    import zoo

    data = write_colours(tmp_path / "train", per_class=40, size=64, seed=0)
    fresh = write_colours(tmp_path / "fresh", per_class=20, size=64, seed=1)
    zoo.finetune("lenet5", data, out=tmp_path / "out", epochs=15)
    assert _fresh_accuracy(tmp_path / "out", fresh) >= 0.95


@pytest.mark.slow
def test_defaults_resnet18_from_scratch_on_three_colours(tmp_path):
    import zoo

    # 32 px images: from scratch, the model is built at the images' own size (a small CI budget)
    data = write_colours(tmp_path / "train", per_class=20, size=32, seed=0)
    fresh = write_colours(tmp_path / "fresh", per_class=20, size=32, seed=1)
    zoo.finetune("resnet18", data, out=tmp_path / "out", epochs=15, weights=None)
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert meta["input_shape"] == [32, 32, 3]
    assert _fresh_accuracy(tmp_path / "out", fresh) >= 0.95


@pytest.mark.slow
def test_cli_progress_warnings_lr_find_and_plots(tmp_path):
    data = write_colours(tmp_path / "train", per_class=20, size=64)
    out = tmp_path / "out"
    result = zoo_cli("finetune", "lenet5", str(data), "--out", str(out), "--epochs", "4", "--lr", "find", "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout
    assert "converted to grayscale" in text.split("epoch 1/4")[0]  # said once, before training
    assert "too few training images for a range test" in text  # and the default rate is used
    for k in range(1, 5):
        assert f"epoch {k}/4 " in text  # one count across both stages
    assert "ETA" in text and "optimizer steps" in text
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training"]["options"]["lr"] == 5e-3 and meta["training"]["options"]["batch_size"] == 8
    assert any("range test" in note for note in meta["training"]["notes"])


@pytest.mark.slow
def test_lr_find_on_digits_suggests_a_rate_and_plots(tmp_path):
    import zoo

    data = write_digits(tmp_path / "d", per_class=40)
    rate = zoo.lr_find("lenet5", data, plot=tmp_path / "lr_find.png")
    assert 1e-5 < rate < 1.0
    assert (tmp_path / "lr_find.png").stat().st_size > 1000


@pytest.mark.slow
def test_near_chance_accuracy_is_reported(tmp_path):
    import zoo
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):  # the same noise in every class: nothing to learn
        (tmp_path / "d" / name).mkdir(parents=True)
        for i in range(16):
            Image.fromarray(rng.integers(0, 256, (32, 32), np.uint8)).save(tmp_path / "d" / name / f"{i}.png")
    zoo.finetune("lenet5", tmp_path / "d", out=tmp_path / "out", epochs=2, verbose=0)
    notes = json.loads((tmp_path / "out" / "metadata.json").read_text())["training"]["notes"]
    assert any("near chance" in n and "--lr find" in n for n in notes), notes


@pytest.mark.slow
def test_predict_save_dir_draws_on_the_original_colours(tmp_path):
    import zoo
    from PIL import Image

    data = write_colours(tmp_path / "train", per_class=4, size=64)
    zoo.finetune("lenet5", data, out=tmp_path / "out", epochs=1, verbose=0)
    image = next((data / "red").iterdir())
    result = zoo_cli("predict", str(image), "--model", str(tmp_path / "out"), "--save-dir", str(tmp_path / "cli"))
    assert result.returncode == 0, result.stderr[-2000:]
    (drawn,) = list((tmp_path / "cli").glob("*.png"))
    pixels = np.asarray(Image.open(drawn).convert("RGB"), np.float32)
    centre = pixels[pixels.shape[0] // 2 :, pixels.shape[1] // 2 :].reshape(-1, 3).mean(axis=0)
    assert centre[0] > centre[1] + 80 and centre[0] > centre[2] + 80  # still red, not gray


@pytest.mark.slow
def test_defaults_train_batch_norm_in_stage_two(tmp_path):
    """Images unlike the pretraining ones need batch norm statistics of their own: by default the
    fine-tuning stage's batch norm layers train (`--bn frozen` keeps the old statistics)."""
    import keras

    import zoo

    weights = tmp_path / "r18.weights.h5"
    zoo.build("resnet18", input_shape=(32, 32, 3)).save_weights(str(weights))
    data = write_colours(tmp_path / "train", per_class=8, size=32)

    def first_bn_mean(model):
        layer = next(l for l in model._flatten_layers() if isinstance(l, keras.layers.BatchNormalization))
        return np.asarray(layer.moving_mean)

    start = first_bn_mean(zoo.build("resnet18", input_shape=(32, 32, 3), weights=str(weights)))
    # no validation split: the last epoch's weights come back, not the best (here the head-only epoch)
    model = zoo.finetune("resnet18", data, out=tmp_path / "out", epochs=2, weights=str(weights), verbose=0,
                         val_split=0.0)
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert [s["name"] for s in meta["training"]["stages"]] == ["head", "finetune"]
    assert meta["training"]["options"]["bn"] == "train"
    assert np.abs(first_bn_mean(model) - start).max() > 1e-3  # the statistics followed the new images
    kept = zoo.finetune("resnet18", data, out=tmp_path / "kept", epochs=2, weights=str(weights), verbose=0,
                        val_split=0.0, bn="frozen")
    np.testing.assert_allclose(first_bn_mean(kept), start, atol=1e-6)
