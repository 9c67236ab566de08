"""Captioners as SavedModels that caption on their own: the encoder, the decoding step and the search
loop (greedy and beam search) as tf.function signatures, the vocabulary inside. TensorFlow alone
runs them; zoo is not needed:

    import tensorflow as tf
    captioner = tf.saved_model.load("captioner_savedmodel")
    out = captioner.caption(images)   # float32 (N, H, W, C) pixels 0..255 at the model's input size
    out["caption"]                    # tf.string (N,): the captions zoo.predict gives
    captioner.greedy(images, max_length=tf.constant(20))
    captioner.beam_search(images, beam_size=tf.constant(5), max_length=tf.constant(20), alpha=tf.constant(1.0))

`caption` decodes with the model's defaults (metadata.json: beam size, max_length, alpha), and is the
serving_default signature. Every signature returns caption (string), tokens (int32 (N, max_length),
0 after the caption), length (int32), log_prob (float32) and, for an attention captioner,
attention (float32 (N, max_length, rows, columns): each word's weights over the feature map).

The loop is zoo.tasks.captioning.decode's search written in TensorFlow with fixed shapes: each
image keeps `beam_size` slots of partial captions (empty ones at -inf) and `beam_size` slots of
finished ones; the same candidates win in the same order (top_k, like a stable sort, puts the lower
index first among equals) and log-probabilities add up in float64, so the captions are those of
zoo.predict. `write_savedmodel` writes one; `check_parity` runs it against zoo's decoding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from zoo.tasks.captioning.text import END_ID, PAD_ID, START_ID


def _search(start, step, images, *, beam_size, max_length, alpha, vocab, attention: bool) -> dict:
    """Beam search over the batch `images` (greedy when beam_size is 1), in TensorFlow ops."""
    import tensorflow as tf

    f64 = tf.float64
    neg_inf = tf.constant(-np.inf, f64)
    k = tf.cast(beam_size, tf.int32)
    length = tf.cast(max_length, tf.int32)
    alpha = tf.cast(alpha, f64)
    words_total = int(vocab.shape[0])
    state = [tf.repeat(s, k, axis=0) for s in start(images, training=False)]  # row i * k + slot
    n = tf.shape(images)[0]
    slots = tf.range(k)[None, :]
    columns = tf.range(length)[None, None, :]
    cells = int(state[2].shape[1]) if attention else 0

    def empty(dtype, *tail):
        return tf.zeros(tf.stack([n, k, *tail]), dtype)

    # Per slot: total log-prob, words so far, their count and (attention models) each word's weights.
    alive = {"lp": tf.where(slots == 0, tf.zeros((n, k), f64), neg_inf), "ids": empty(tf.int32, length),
             "len": empty(tf.int32)}
    done = {"lp": tf.fill((n, k), neg_inf), "ids": empty(tf.int32, length), "len": empty(tf.int32)}
    if attention:
        alive["att"], done["att"] = empty(tf.float32, length, cells), empty(tf.float32, length, cells)
    carried = tuple(key for key in alive if key != "lp")
    finished = tf.zeros((n,), tf.int32)
    tokens = tf.fill((n * k, 1), START_ID)
    only_end = tf.one_hot(END_ID, words_total, on_value=False, off_value=True)  # True: not <end>

    def body(t, tokens, state, alive, done, finished):
        out = step([tokens, *state], training=False)
        logp = tf.reshape(tf.cast(out[0], f64), (n, k, words_total))
        totals = alive["lp"][:, :, None] + logp
        totals = tf.where(tf.logical_and(t == length, only_end), neg_inf, totals)  # no room: only <end>
        values, index = tf.math.top_k(tf.reshape(totals, (n, k * words_total)), k)
        parent, word = index // words_total, index % words_total
        valid = tf.logical_and(slots < (k - finished)[:, None], tf.math.is_finite(values))
        ends = tf.logical_and(valid, tf.equal(word, END_ID))
        grows = tf.logical_and(valid, tf.not_equal(word, END_ID))
        # Finished captions go to the next free finished slots, in candidate order.
        where = tf.where(ends)
        image = where[:, 0]
        slot = tf.cast(tf.gather(finished, image), tf.int64) + tf.gather_nd(
            tf.cumsum(tf.cast(ends, tf.int64), axis=1, exclusive=True), where)
        target = tf.stack([image, slot], 1)
        source = tf.stack([image, tf.cast(tf.gather_nd(parent, where), tf.int64)], 1)
        done = {"lp": tf.tensor_scatter_nd_update(done["lp"], target, tf.gather_nd(values, where)),
                **{key: tf.tensor_scatter_nd_update(done[key], target, tf.gather_nd(alive[key], source))
                   for key in carried}}
        finished = finished + tf.reduce_sum(tf.cast(ends, tf.int32), axis=1)
        # Growing captions fill the alive slots from the front, in candidate order.
        order = tf.argsort(tf.where(grows, slots, slots + k), axis=1, stable=True)
        count = tf.reduce_sum(tf.cast(grows, tf.int32), axis=1)
        keep = slots < count[:, None]
        parent, word = tf.gather(parent, order, batch_dims=1), tf.gather(word, order, batch_dims=1)
        rows = tf.reshape(parent + tf.range(n)[:, None] * k, (-1,))
        picked = {key: tf.gather(alive[key], parent, batch_dims=1) for key in carried}
        at_t = tf.equal(columns, t)
        alive = {"lp": tf.where(keep, tf.gather(values, order, batch_dims=1), neg_inf),
                 "ids": tf.where(at_t, word[:, :, None], picked["ids"]), "len": picked["len"] + 1}
        if attention:
            now = tf.gather(tf.reshape(out[3], (n, k, cells)), parent, batch_dims=1)
            alive["att"] = tf.where(at_t[..., None], now[:, :, None, :], picked["att"])
        state = [tf.gather(s, rows) for s in [out[1], out[2], *state[2:]]]
        return t + 1, tf.reshape(word, (-1, 1)), state, alive, done, finished

    def more(t, tokens, state, alive, done, finished):
        return tf.logical_and(t <= length, tf.reduce_any(tf.math.is_finite(alive["lp"])))

    loop = (tf.constant(0), tokens, state, alive, done, finished)
    # Only ranks are fixed: the beam width and lengths are tensors, so static sizes may not hold.
    free = tf.nest.map_structure(lambda x: tf.TensorShape([None] * x.shape.rank), loop)
    _, _, _, alive, done, finished = tf.while_loop(more, body, loop, shape_invariants=free)

    def scores(group, extra):
        lp = group["lp"]
        return lp / tf.pow(tf.cast(tf.maximum(group["len"] + extra, 1), f64), alpha)

    # Like max() over the finished captions in the order they finished (else the partial ones).
    has = finished > 0
    score = tf.where(has[:, None], tf.where(slots < finished[:, None], scores(done, 1), neg_inf), scores(alive, 0))
    best = tf.reduce_min(tf.where(score == tf.reduce_max(score, axis=1, keepdims=True), slots, k), axis=1)

    def pick(key):
        return tf.where(tf.reshape(has, (-1,) + (1,) * (len(done[key].shape) - 2)),
                        tf.gather(done[key], best, batch_dims=1), tf.gather(alive[key], best, batch_dims=1))

    ids, lengths = pick("ids"), pick("len")
    written = tf.range(length)[None, :] < lengths[:, None]
    ids = tf.where(written, ids, 0)
    shown = tf.logical_and(written, tf.logical_and(ids != PAD_ID, ids != START_ID))  # as text.decode drops them
    words = tf.ragged.boolean_mask(tf.gather(vocab, ids), shown)
    result = {"caption": tf.strings.reduce_join(words, axis=1, separator=" "), "tokens": ids, "length": lengths,
              "log_prob": tf.cast(pick("lp"), tf.float32)}
    if attention:
        result["attention"] = tf.where(written[:, :, None], pick("att"), 0.0)
    return result


def write_savedmodel(model, meta: dict, path: str | Path) -> Path:
    """`model` (a zoo captioner with its metadata) as a SavedModel at `path` (see the module docstring)."""
    import keras
    import tensorflow as tf

    from zoo.files import write_text
    from zoo.tasks.captioning.predict import _decoding_models, attention_grid, check_model_vocabulary, decoding_options

    vocab = check_model_vocabulary(model, meta.get("vocabulary") or [])
    settings = decoding_options(meta)
    start, step = _decoding_models(model, from_features=False)
    grid = attention_grid(model)
    table = tf.constant(vocab)
    image_spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32, name="images")
    scalar = {name: tf.TensorSpec((), dtype, name=name) for name, dtype in
              (("beam_size", tf.int32), ("max_length", tf.int32), ("alpha", tf.float32))}

    def run(images, beam_size, max_length, alpha):
        out = _search(start, step, images, beam_size=beam_size, max_length=max_length, alpha=alpha, vocab=table,
                      attention=grid is not None)
        if grid is not None:
            out["attention"] = tf.reshape(out["attention"], tf.concat([tf.shape(out["attention"])[:2], grid], 0))
        return out

    archive = keras.export.ExportArchive()
    archive.track(start)
    archive.track(step)
    archive.add_endpoint("caption", lambda images: run(images, settings["beam_size"], settings["max_length"],
                                                        settings["alpha"]), input_signature=[image_spec])
    archive.add_endpoint("greedy", lambda images, max_length: run(images, 1, max_length, 0.0),
                         input_signature=[image_spec, scalar["max_length"]])
    archive.add_endpoint("beam_search", run, input_signature=[image_spec, scalar["beam_size"], scalar["max_length"],
                                                              scalar["alpha"]])
    path = Path(path)
    archive.write_out(str(path), verbose=False)
    write_text(path / "metadata.json", json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
    return path


def check_parity(model, meta: dict, path: str | Path, samples: np.ndarray, *, tolerance: float | None = None) -> dict[str, Any]:
    """Run the SavedModel's `caption` and `greedy` on `samples` and compare with zoo's own decoding:
    every caption must be the same and log-probabilities within tolerance (default 1e-4 relative)."""
    import tensorflow as tf

    from zoo.tasks.captioning.predict import decoding_options, generate

    loaded = tf.saved_model.load(str(path))
    settings = decoding_options(meta)
    vocab = meta["vocabulary"]
    runs = [(loaded.caption(tf.constant(samples)), generate(model, samples, vocab=vocab, **settings)),
            (loaded.greedy(tf.constant(samples), tf.constant(settings["max_length"])),
             generate(model, samples, vocab=vocab, beam_size=1, max_length=settings["max_length"]))]
    same, total, diff, peak = 0, 0, 0.0, 1.0
    for exported, reference in runs:
        captions = [c.decode("utf-8") for c in exported["caption"].numpy()]
        same += sum(a == b["caption"] for a, b in zip(captions, reference))
        total += len(reference)
        ref_lp = np.array([r["log_prob"] for r in reference])
        diff = max(diff, float(np.max(np.abs(exported["log_prob"].numpy() - ref_lp))) if len(ref_lp) else 0.0)
        peak = max(peak, float(np.max(np.abs(ref_lp))) if len(ref_lp) else 0.0)
    tol = 1e-4 if tolerance is None else float(tolerance)
    return {"max_abs_diff": diff, "tolerance": tol, "allowed": tol * peak, "caption_agreement": same / max(total, 1),
            "passed": same == total and diff <= tol * peak}
