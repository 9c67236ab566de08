"""Show, Attend and Tell through zoo finetune / predict / evaluate: cached feature maps, records with
one attention peak per word in original pixels, the attention figure, the full maps on request."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from zoo.errors import UsageError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from make_shapes_captions import make  # noqa: E402

TASK_OPTIONS = {"min_count": 1, "embed_dim": 16, "units": 16, "attention_dim": 8, "tiny_width": 4,
                "train_backbone": "false", "beam_size": 2, "feature": "s8", "attention_reg": "0.5"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-epoch run on a frozen (random) tiny encoder: the decoder trains on cached feature maps."""
    import zoo

    root = tmp_path_factory.mktemp("attention")
    make(root / "data", count=24, size=32, seed=5, fmt="csv")
    zoo.finetune("show_attend_tell", root / "data", out=root / "model", backbone="tiny", image_size=32,
                 weights="none", epochs=2, batch_size=8, augment="none", verbose=0, task_options=TASK_OPTIONS)
    return root


def test_model_directory_holds_the_attention_captioner(trained):
    import zoo
    from zoo.modeldir import read_meta

    meta = read_meta(trained / "model")
    assert meta["arch"] == "show_attend_tell" and meta["task"] == "captioning"
    assert [s["name"] for s in meta["training"]["stages"]] == ["decoder"]
    assert meta["captioning"]["feature"] == "s8" and meta["captioning"]["attention_reg"] == 0.5
    assert {"bleu1", "bleu4", "cider"} <= set(meta["metrics"])
    model = zoo.load_model(trained / "model")
    assert model.get_layer("decoder").get_layer("attention_lstm").attention_reg == 0.5
    assert tuple(model.get_layer("encoder").output.shape[1:3]) == (4, 4)


def test_records_carry_one_attention_peak_per_word_in_original_pixels(trained, tmp_path):
    """A 60 x 120 original (the model sees 32 x 32): each peak is the centre of the word's most
    attended cell of the 4 x 4 grid, stretched back to 120 x 60."""
    import zoo
    from PIL import Image

    src = sorted((trained / "data" / "images").glob("*.png"))[0]
    with Image.open(src) as im:
        im.convert("RGB").resize((120, 60)).save(tmp_path / "wide.png")
    (record,) = zoo.predict([str(tmp_path / "wide.png")], model=str(trained / "model"), attention_maps=True)
    words = record["caption"].split()
    assert [a["word"] for a in record["attention"]] == words
    maps = record["attention_maps"]
    assert maps.shape == (len(words), 4, 4) and maps.dtype == np.float32
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), 1.0, atol=1e-5)
    for entry, grid in zip(record["attention"], maps):
        row, column = np.unravel_index(int(np.argmax(grid)), grid.shape)
        assert entry["peak"] == pytest.approx([(column + 0.5) * 120 / 4, (row + 0.5) * 60 / 4], abs=0.05)
    plain = zoo.predict([str(tmp_path / "wide.png")], model=str(trained / "model"))[0]
    assert "attention_maps" not in plain and plain["attention"] == record["attention"]


def test_attention_records_undo_every_resize_policy():
    from zoo.data.images import resize_for_model
    from zoo.tasks.captioning.predict import attention_records

    grid = np.zeros((2, 4, 4), "float32")
    grid[0, 3, 0] = grid[1, 0, 2] = 1.0  # bottom-left cell, then top row third column
    image = np.zeros((100, 200, 3), np.uint8)
    # letterbox pads 8 rows above and below the 32 x 16 image: cells there clip to the image's edge
    for policy, expected in (("squash", [[25.0, 87.5], [125.0, 12.5]]), ("letterbox", [[25.0, 100.0], [125.0, 0.0]])):
        _, info = resize_for_model(image, (32, 32), resize=policy)
        entries, maps = attention_records(["<start>", "red", "circle"], np.concatenate([grid[:1], grid]), info, (32, 32))
        assert [e["word"] for e in entries] == ["red", "circle"] and maps.shape == (2, 4, 4)
        assert [e["peak"] for e in entries] == expected, policy


def test_save_dir_writes_the_attention_figure_and_jsonl_stays_json(trained, tmp_path, capsys):
    from PIL import Image

    from zoo.cli import main

    images = sorted((trained / "data" / "images").glob("*.png"))[:2]
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", *map(str, images), "--model", str(trained / "model"), "--format", "jsonl",
              "--save-dir", str(tmp_path / "out"), "--beam-size", "1"])
    assert exit_info.value.code == 0
    records = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(records) == 2 and all(r["ok"] and "attention" in r and "attention_maps" not in r for r in records)
    for path, record in zip(images, records):
        figure = tmp_path / "out" / f"{path.stem}_attention.png"
        assert figure.is_file() and (tmp_path / "out" / f"{path.stem}.png").is_file()
        with Image.open(figure) as im:
            words = len(record["attention"])
            assert im.width >= 150 * min(words, 5)  # one panel per word, five to a row


def test_beam_search_and_greedy_agree_with_generate(trained):
    import zoo
    from zoo.data.images import decode_image
    from zoo.modeldir import get_meta
    from zoo.tasks.captioning.predict import generate

    model = zoo.load_model(trained / "model")
    paths = sorted((trained / "data" / "images").glob("*.png"))[:4]
    batch = np.stack([decode_image(p) for p in paths])
    vocab = get_meta(model)["vocabulary"]
    for beam in (1, 3):
        records = zoo.predict([str(p) for p in paths], model=model, beam_size=beam, max_length=10)
        direct = generate(model, batch, vocab=vocab, beam_size=beam, max_length=10)
        assert [r["caption"] for r in records] == [g["caption"] for g in direct]
        assert all(g["attention"].shape == (len(g["tokens"]), 4, 4) for g in direct)


def test_evaluate_json_keys(trained, capsys):
    from zoo.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", str(trained / "model"), str(trained / "data"), "--json"])
    assert exit_info.value.code == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"bleu1", "bleu4", "cider"} <= set(scores) and scores["num_images"] == 24


def test_trainable_backbone_trains_the_whole_attention_model(tmp_path):
    import zoo
    from zoo.modeldir import read_meta

    make(tmp_path / "data", count=12, size=32, seed=3)
    zoo.finetune("show_attend_tell", tmp_path / "data", out=tmp_path / "out", backbone="tiny", image_size=32,
                 weights="none", epochs=1, batch_size=8, verbose=0,
                 task_options={"min_count": 1, "embed_dim": 8, "units": 8, "attention_dim": 8, "tiny_width": 4})
    meta = read_meta(tmp_path / "out")
    assert [s["name"] for s in meta["training"]["stages"]] == ["train"] and meta["captioning"]["train_backbone"]


def test_frozen_encoder_without_a_cache_freezes_up_to_the_feature_map():
    from zoo.models.show_attend_tell import build_from_config, make_config
    from zoo.tasks.captioning import TASK
    from zoo.training.freeze import freeze
    from zoo.training.options import TrainOptions
    from zoo.training.task import TaskData

    model = build_from_config(make_config(backbone="tiny", vocab_size=8, embed_dim=4, units=4, attention_dim=4,
                                          tiny_width=2), input_shape=(32, 32, 3))
    (stage,) = TASK.stages(model, TaskData(train=None, val=None, labels=[], extras={"cached": False}),
                           TrainOptions(epochs=2, lr=0.01))
    assert stage.freeze == {"until": "tiny4_relu", "bn": "frozen"}  # the s16 map; the s32 stage is not built
    freeze(model, **stage.freeze)
    assert not model.get_layer("encoder").trainable_weights
    assert len(model.trainable_weights) == len(model.get_layer("decoder").weights)


def test_attention_options_parse_and_reach_only_the_model_that_has_them(tmp_path):
    import zoo
    from zoo.tasks.captioning import TASK

    opts = TASK.parse_options({"attention_dim": "64", "attention_reg": "0", "gate": "false", "feature": "s16"})
    assert opts.arch_options() == {"attention_dim": 64, "attention_reg": 0.0, "gate": False, "feature": "s16"}
    for raw, match in (({"attention_reg": "-1"}, "attention_reg"), ({"attention_dim": "0"}, "attention_dim"),
                       ({"gate": "maybe"}, "gate")):
        with pytest.raises(UsageError, match=match):
            TASK.parse_options(raw)
    make(tmp_path / "data", count=6, size=32, seed=1)
    with pytest.raises(UsageError, match="Unknown show_and_tell option.*attention_dim"):
        zoo.finetune("show_and_tell", tmp_path / "data", out=tmp_path / "out", backbone="tiny", image_size=32,
                     weights="none", epochs=1, verbose=0, task_options={"min_count": 1, "attention_dim": 8})
    with pytest.raises(UsageError, match="show_attend_tell has no option 'pooling'"):
        zoo.finetune("show_attend_tell", tmp_path / "data", out=tmp_path / "out2", backbone="tiny", image_size=32,
                     weights="none", epochs=1, verbose=0, task_options={"min_count": 1, "pooling": "avg"})
