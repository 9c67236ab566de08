"""Captioning through zoo finetune / predict / evaluate: cached encoder features, the model
directory (whole captioner + vocabulary), caption records and captioned PNGs, BLEU/CIDEr keys."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from zoo.errors import UsageError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from make_shapes_captions import make  # noqa: E402

TASK_OPTIONS = {"min_count": 1, "embed_dim": 16, "units": 16, "tiny_width": 4, "train_backbone": "false",
                "beam_size": 2}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-epoch run on a frozen (random) tiny encoder: the cached-features path of zoo finetune."""
    import zoo

    root = tmp_path_factory.mktemp("captions")
    make(root / "data", count=24, size=32, seed=5, fmt="csv")
    import zoo.tasks.captioning.train as train

    calls = []

    real = train.encode_images

    def counting(model, images, **kw):
        calls.append(len(images))
        return real(model, images, **kw)

    train.encode_images = counting
    try:
        zoo.finetune("show_and_tell", root / "data", out=root / "model", backbone="tiny", image_size=32, weights="none",
                     epochs=2, batch_size=8, augment="none", verbose=0, task_options=TASK_OPTIONS)
    finally:
        train.encode_images = real
    return root, calls


def test_encoder_runs_once_per_image_and_the_whole_captioner_is_saved(trained):
    import zoo
    from zoo.modeldir import read_meta

    root, calls = trained
    assert sorted(calls) == [5, 19]  # validation and training images, once each (48 captions)
    meta = read_meta(root / "model")
    assert meta["task"] == "captioning" and meta["arch"] == "show_and_tell"
    assert meta["vocabulary"][:4] == ["", "[UNK]", "<start>", "<end>"] and meta["max_length"] == 8
    assert [s["name"] for s in meta["training"]["stages"]] == ["decoder"]
    assert {"bleu1", "bleu2", "bleu3", "bleu4", "cider", "exact"} <= set(meta["metrics"])
    assert meta["data"]["train_captions"] == 38 and meta["data"]["val_captions"] == 10
    model = zoo.load_model(root / "model")
    assert [tuple(i.shape[1:]) for i in model.inputs] == [(32, 32, 3), (None,)]
    for name in ("model.keras", "metadata.json", "history.csv", "curves.png", "captions.png"):
        assert (root / "model" / name).is_file(), name


def test_predict_records_and_captioned_images(trained, tmp_path):
    import zoo
    from PIL import Image

    root, _ = trained
    images = sorted((root / "data" / "images").glob("*.png"))[:3]
    records = zoo.predict([str(p) for p in images] + [str(root / "missing.png")], model=str(root / "model"),
                          save_dir=tmp_path, beam_size=1)
    assert [r["ok"] for r in records] == [True, True, True, False]
    vocab = set(json.loads((root / "model" / "metadata.json").read_text())["vocabulary"])
    for record in records[:3]:
        assert record["task"] == "captioning" and isinstance(record["caption"], str)
        assert set(record["caption"].split()) <= vocab
    saved = sorted(tmp_path.glob("*.png"))
    assert len(saved) == 3
    with Image.open(saved[0]) as im:
        assert im.height > im.width  # the caption band sits under the (square) image


def test_beam_size_one_prediction_equals_greedy_generation(trained):
    import zoo
    from zoo.data.images import decode_image
    from zoo.modeldir import get_meta
    from zoo.tasks.captioning.predict import generate

    root, _ = trained
    model = zoo.load_model(root / "model")
    paths = sorted((root / "data" / "images").glob("*.png"))[:4]
    records = zoo.predict([str(p) for p in paths], model=model, beam_size=1)
    batch = np.stack([decode_image(p) for p in paths])
    greedy = generate(model, batch, vocab=get_meta(model)["vocabulary"], beam_size=1, max_length=10)
    assert [r["caption"] for r in records] == [g["caption"] for g in greedy]


def test_evaluate_json_keys(trained, capsys):
    from zoo.cli import main

    root, _ = trained
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", str(root / "model"), str(root / "data"), "--json"])
    assert exit_info.value.code == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"bleu1", "bleu2", "bleu3", "bleu4", "cider"} <= set(scores)
    assert scores["num_images"] == 24 and scores["task"] == "captioning"


def test_untrained_model_has_no_vocabulary():
    import zoo
    from zoo.models.show_and_tell import build_from_config, make_config
    from zoo.modeldir import attach_meta

    model = build_from_config(make_config(backbone="tiny", vocab_size=8, embed_dim=4, units=4, tiny_width=2),
                              input_shape=(16, 16, 3))
    attach_meta(model, {"arch": "show_and_tell", "task": "captioning", "input_shape": [16, 16, 3]})
    with pytest.raises(UsageError, match="no vocabulary"):
        zoo.predict([np.zeros((16, 16, 3), np.uint8)], model=model)


def test_bad_data_fails_before_training(tmp_path):
    import zoo

    with pytest.raises(UsageError, match="folder"):
        zoo.finetune("show_and_tell", tmp_path / "nope", out=tmp_path / "out", epochs=1)
    (tmp_path / "data" / "images").mkdir(parents=True)
    with pytest.raises(UsageError, match="captions file"):
        zoo.finetune("show_and_tell", tmp_path / "data", out=tmp_path / "out", epochs=1)
    assert not (tmp_path / "out" / "model.keras").exists()


def test_stages_keep_a_frozen_encoder_frozen_without_a_cache():
    """--cache-features off (or several replicas): the whole model trains with the encoder frozen."""
    from zoo.models.show_and_tell import build_from_config, make_config
    from zoo.tasks.captioning import TASK
    from zoo.training.freeze import freeze
    from zoo.training.options import TrainOptions
    from zoo.training.task import TaskData

    model = build_from_config(make_config(backbone="tiny", vocab_size=8, embed_dim=4, units=4, tiny_width=2),
                              input_shape=(16, 16, 3))
    data = TaskData(train=None, val=None, labels=[], extras={"cached": False})
    opts = TrainOptions(epochs=3, lr=0.01)
    (stage,) = TASK.stages(model, data, opts)
    assert stage.freeze == {"until": "encoder_pool", "bn": "frozen"} and stage.epochs == 3
    freeze(model, **stage.freeze)
    assert not model.get_layer("encoder").trainable_weights
    assert len(model.trainable_weights) == len(model.get_layer("decoder").weights)
    scratch = build_from_config(make_config(backbone="tiny", vocab_size=8, embed_dim=4, units=4, tiny_width=2,
                                            train_backbone=True), input_shape=(16, 16, 3))
    assert TASK.stages(scratch, data, opts)[0].freeze is None


def test_vocabulary_must_match_the_softmax(trained):
    import zoo
    from zoo.modeldir import attach_meta, get_meta

    root, _ = trained
    model = zoo.load_model(root / "model")
    meta = get_meta(model)
    attach_meta(model, {**meta, "vocabulary": meta["vocabulary"][:-1]})
    with pytest.raises(UsageError, match="softmax has"):
        zoo.predict([np.zeros((32, 32, 3), np.uint8)], model=model)
    attach_meta(model, {**meta, "vocabulary": ["<start>", "", "[UNK]", "<end>"] + meta["vocabulary"][4:]})
    with pytest.raises(UsageError, match="must start with"):
        zoo.predict([np.zeros((32, 32, 3), np.uint8)], model=model)


def test_pretrained_backbone_is_frozen_cached_and_saved_unchanged(tmp_path):
    """The default path: backbone weights given -> frozen encoder, decoder on cached features, and
    the saved captioner's encoder computes exactly what the weights file's backbone computes."""
    import zoo
    from zoo.modeldir import read_meta

    make(tmp_path / "data", count=12, size=32, seed=2)
    zoo.build("resnet18", input_shape=(32, 32, 3)).save_weights(str(tmp_path / "r18.weights.h5"))
    zoo.finetune("show_and_tell", tmp_path / "data", out=tmp_path / "out", backbone="resnet18", image_size=32,
                 weights=str(tmp_path / "r18.weights.h5"), epochs=1, batch_size=8, verbose=0,
                 task_options={"min_count": 1, "embed_dim": 8, "units": 8})
    meta = read_meta(tmp_path / "out")
    assert [s["name"] for s in meta["training"]["stages"]] == ["decoder"]
    assert meta["captioning"]["train_backbone"] is False and "r18.weights.h5" in meta["weights"]["origin"]
    encoder = zoo.load_model(tmp_path / "out").get_layer("encoder")
    reference = zoo.build_backbone("resnet18", weights=str(tmp_path / "r18.weights.h5"), input_shape=(32, 32, 3))
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(encoder(x)), np.asarray(reference(x)["s32"]).mean(axis=(1, 2)), atol=1e-5)


def test_task_options_parse_from_the_command_line_once():
    from zoo.tasks.captioning import TASK, CaptioningTask
    from zoo.tasks.captioning.options import CaptioningOptions
    from zoo.training.task import Task, get_task

    assert get_task("captioning") is TASK and isinstance(TASK, CaptioningTask) and isinstance(TASK, Task)
    defaults = TASK.parse_options({})
    assert defaults == CaptioningOptions() and (defaults.min_count, defaults.max_length, defaults.beam_size) == (5, 40, 3)
    assert defaults.train_backbone is None and defaults.arch_options() == {}
    opts = TASK.parse_options({"min_count": "2", "beam_size": "1", "alpha": "0.5", "train_backbone": "false",
                               "units": "64", "pooling": "flatten", "dropout": "none"})
    assert (opts.min_count, opts.beam_size, opts.alpha, opts.train_backbone) == (2, 1, 0.5, False)
    assert opts.arch_options() == {"units": 64, "pooling": "flatten"}
    assert TASK.parse_options(opts) is opts


@pytest.mark.parametrize("raw, match", [
    ({"beam": "3"}, "Unknown captioning option.*Valid: .*beam_size"),
    ({"min_count": "0"}, "min_count.*>= 1"),
    ({"max_length": "x"}, "max_length"),
    ({"pooling": "mean"}, "pooling.*avg, max, flatten.*'mean'"),
    ({"feature": "s64"}, "feature"),
    ({"dropout": "1.5"}, r"dropout.*\[0, 1\)"),
    ({"train_backbone": "maybe"}, "train_backbone"),
    ({"alpha": "inf"}, "alpha"),
])
def test_bad_task_options_name_the_rule(raw, match):
    from zoo.tasks.captioning import TASK

    with pytest.raises(UsageError, match=match):
        TASK.parse_options(raw)


def test_the_task_package_imports_without_tensorflow():
    import subprocess

    code = ("import sys, zoo.tasks.captioning as c; c.TASK.parse_options({'units': '8'}); "
            "sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
