"""Both captioners export as a SavedModel with greedy and beam search inside, and caption without zoo:
loaded by tf.saved_model.load in a Python that cannot import zoo, they give zoo.predict's captions."""

import json
import subprocess
import sys

import numpy as np
import pytest

from helpers import BLOCK_ZOO
from zoo.errors import UsageError

VOCAB = ["", "[UNK]", "<start>", "<end>"] + [f"w{i}" for i in range(12)]

# Runs in `python -I` (no PYTHONPATH, no current directory on sys.path): TensorFlow and numpy only.
ALONE = BLOCK_ZOO + """
import json, sys
import numpy as np
import tensorflow as tf
captioner = tf.saved_model.load(sys.argv[1])
images = tf.constant(np.load(sys.argv[2]).astype("float32"))
runs = {"caption": captioner.caption(images), "greedy": captioner.greedy(images, tf.constant(6)),
        "beam": captioner.beam_search(images, tf.constant(4), tf.constant(6), tf.constant(0.5)),
        "serving_default": captioner.signatures["serving_default"](images=images)}
out = {name: {"caption": [c.decode() for c in r["caption"].numpy()], "log_prob": r["log_prob"].numpy().tolist(),
              "length": r["length"].numpy().tolist(),
              "attention": r["attention"].numpy().tolist() if "attention" in r else None} for name, r in runs.items()}
print(json.dumps(out))
"""


def scenes():
    """Six noisy images of six colours, each with its own caption of 1 to 5 words."""
    rng = np.random.default_rng(1)
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [255, 0, 255]])
    images = np.clip(colours[:, None, None] * 0.8 + rng.normal(0, 20, (6, 32, 32, 3)), 0, 255).astype(np.uint8)
    rng = np.random.default_rng(2)
    tokens, targets = np.zeros((6, 7), "int32"), np.zeros((6, 7), "int32")
    for i in range(6):
        caption = [2, *rng.integers(4, len(VOCAB), 1 + i % 5), 3]
        tokens[i, : len(caption) - 1], targets[i, : len(caption) - 1] = caption[:-1], caption[1:]
    return images, tokens, targets


def captioner(arch, epochs=60):
    """A small captioner fitted for a minute to the scenes: its captions differ in words and length
    from image to image, and its word distributions are not so sharp that beam search has no choice."""
    import keras

    import zoo
    from zoo.modeldir import attach_meta
    from zoo.tasks.captioning.train import caption_loss

    keras.utils.set_random_seed(4)
    extra = {"attention_dim": 8, "feature": "s8"} if arch == "show_attend_tell" else {"pooling": "flatten"}
    model = zoo.build(arch, input_shape=(32, 32, 3), backbone="tiny", vocab_size=len(VOCAB), embed_dim=8, units=16,
                      tiny_width=4, dropout=0.0, train_backbone=True, **extra)
    images, tokens, targets = scenes()
    if epochs:
        model.compile(optimizer=keras.optimizers.Adam(0.02), loss=caption_loss())
        model.fit([images.astype("float32"), tokens], targets, epochs=epochs, batch_size=6, verbose=0)
    attach_meta(model, {"arch": arch, "task": "captioning", "input_shape": [32, 32, 3], "vocabulary": VOCAB,
                        "max_length": 4, "preprocessing": {"in_model": True, "resize": "squash"},
                        "captioning": {"beam_size": 3, "alpha": 1.0}})
    return model


@pytest.mark.parametrize("arch", ["show_and_tell", "show_attend_tell"])
def test_savedmodel_captions_without_zoo_as_zoo_predict_does(arch, tmp_path):
    import zoo
    from zoo.exporting import export_with_report

    model = captioner(arch)
    path, report = export_with_report(model, format="savedmodel", out=tmp_path / "captioner")
    assert report["passed"] and report["caption_agreement"] == 1.0 and report["format"] == "savedmodel"
    assert json.loads((path / "metadata.json").read_text())["vocabulary"] == VOCAB
    images = scenes()[0]
    np.save(tmp_path / "images.npy", images)
    (tmp_path / "alone.py").write_text(ALONE)
    run = subprocess.run([sys.executable, "-I", str(tmp_path / "alone.py"), str(path), str(tmp_path / "images.npy")],
                         cwd=tmp_path, capture_output=True, text=True, check=False, timeout=600,
                         env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""})
    assert run.returncode == 0, run.stderr[-2000:]
    alone = json.loads(run.stdout.strip().splitlines()[-1])
    expected = {
        "caption": zoo.predict(list(images), model=model),  # the model's defaults: beam 3, alpha 1
        "greedy": zoo.predict(list(images), model=model, beam_size=1, max_length=6),
        "beam": zoo.predict(list(images), model=model, beam_size=4, max_length=6, alpha=0.5),
    }
    expected["serving_default"] = expected["caption"]
    for name, records in expected.items():
        assert alone[name]["caption"] == [r["caption"] for r in records], name
        np.testing.assert_allclose(alone[name]["log_prob"], [r["log_prob"] for r in records], atol=1e-3)
    lengths = {n for n in alone["beam"]["length"]}
    assert len({c for c in alone["beam"]["caption"]}) > 1 and len(lengths) > 1  # the check has teeth
    if arch == "show_attend_tell":
        maps = zoo.predict(list(images), model=model, beam_size=4, max_length=6, alpha=0.5, attention_maps=True)
        for i, record in enumerate(maps):
            words = len(record["attention"])
            got = np.asarray(alone["beam"]["attention"][i])
            assert got.shape == (6, 4, 4)
            np.testing.assert_allclose(got[:words], record["attention_maps"], atol=1e-5)
            assert not got[words:].any()
    else:
        assert alone["beam"]["attention"] is None


def test_captioners_export_only_as_savedmodel(tmp_path):
    import zoo

    with pytest.raises(UsageError, match="savedmodel"):
        zoo.export(captioner("show_and_tell", epochs=0), format="tflite", out=tmp_path / "c.tflite")
    assert not list(tmp_path.iterdir())


def random_table(seed, images=5, words=8):
    rng = np.random.default_rng(seed)
    t = rng.gamma(0.3, size=(images, words, words)) + 1e-6
    return t / t.sum(-1, keepdims=True)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("beam, alpha, max_length", [(1, 1.0, 5), (3, 1.0, 5), (4, 0.0, 3), (5, 0.7, 6)])
def test_tensorflow_search_is_the_numpy_search(seed, beam, alpha, max_length):
    """The exported loop against zoo.tasks.captioning.decode on known next-word tables (a row's
    next word depends on its image and previous word), with a trace per word as attention has."""
    import tensorflow as tf

    from zoo.tasks.captioning.decode import beam_search, greedy
    from zoo.tasks.captioning.export import _search
    from zoo.tasks.captioning.text import decode

    table = random_table(seed)
    words = [f"v{i}" for i in range(table.shape[1])]

    def np_step(tokens, state):
        image = state[0][:, 0].astype(int)
        logp = np.log(table[image, tokens[:, 0]]).astype("float32")  # what a model's step gives
        return logp.astype("float64"), state, np.eye(3, dtype="float32")[tokens[:, 0] % 3]

    def tf_start(images, training=False):
        rows = tf.cast(images[:, None], tf.float32)
        return [rows, tf.zeros_like(rows), tf.zeros((tf.shape(images)[0], 3, 2))]

    def tf_step(inputs, training=False):
        tokens, h, c, annotations = inputs
        index = tf.stack([tf.cast(h[:, 0], tf.int32), tokens[:, 0]], axis=1)
        logp = tf.math.log(tf.gather_nd(tf.constant(table, tf.float32), index))
        return [logp, h, c, tf.one_hot(tokens[:, 0] % 3, 3)]

    n = table.shape[0]
    state = (np.arange(n, dtype="float32")[:, None], np.zeros((n, 1), "float32"), np.zeros((n, 3, 2), "float32"))
    expected = (greedy(np_step, state, max_length=max_length) if beam == 1 else
                beam_search(np_step, state, beam_size=beam, max_length=max_length, alpha=alpha))
    got = _search(tf_start, tf_step, tf.range(n), beam_size=beam, max_length=max_length, alpha=alpha,
                  vocab=tf.constant(words), attention=True)
    for i, hyp in enumerate(expected):
        length = int(got["length"][i])
        assert list(got["tokens"][i].numpy()[:length]) == hyp.ids and not got["tokens"][i].numpy()[length:].any()
        assert float(got["log_prob"][i]) == pytest.approx(hyp.log_prob, abs=1e-5)
        assert got["caption"][i].numpy().decode() == decode(hyp.ids, words)
        np.testing.assert_array_equal(got["attention"][i].numpy()[:length], np.asarray(hyp.trace).reshape(length, 3))
