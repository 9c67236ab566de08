"""Captions from a trained captioner: decoding settings, the vocabulary check, generation and scoring.

The search itself (zoo.tasks.captioning.decode) only sees a `step(tokens, state)` function; this
module builds it, once per model, from the decoding models of the family that built the captioner
(zoo.models.show_and_tell or zoo.models.show_attend_tell), which share one convention:
    start  image (or encoder features) -> [h, c, *constants]   the LSTM state after the image, then
                                                                 what every step reads unchanged
                                                                 (an attention model's feature map)
    step   [token, h, c, *constants] -> [log-probs, h, c, *trace]   trace: the attention weights
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zoo.errors import UsageError
from zoo.tasks.captioning.options import CaptioningOptions


def decoding_options(meta: dict, options: dict | None = None) -> dict[str, Any]:
    """beam_size, max_length (tokens) and alpha: the caller's options, else the model's metadata.

    max_length defaults to the training captions' longest (in words) plus two, room for the
    last word and <end>.
    """
    options = dict(options or {})
    settings = meta.get("captioning") or {}
    beam = options.get("beam_size") or settings.get("beam_size", CaptioningOptions.beam_size)
    length = options.get("max_length") or int(meta.get("max_length", 20)) + 2
    alpha = options.get("alpha", settings.get("alpha", CaptioningOptions.alpha))
    try:
        beam, length, alpha = int(beam), int(length), float(alpha)
    except (TypeError, ValueError):
        raise UsageError(f"beam_size and max_length must be whole numbers and alpha a number. Received: "
                         f"beam_size={beam!r}, max_length={length!r}, alpha={alpha!r}.") from None
    if beam < 1 or length < 1:
        raise UsageError(f"beam_size and max_length must be >= 1. Received: beam_size={beam}, max_length={length}.")
    return {"beam_size": beam, "max_length": length, "alpha": alpha}


def check_model_vocabulary(model, vocab) -> list[str]:
    """The metadata's vocabulary must have the specials first and one word per softmax unit."""
    from zoo.tasks.captioning.text import check_vocabulary

    vocab = check_vocabulary(vocab)
    units = int(model.get_layer("decoder").get_layer("logits").units)
    if units != len(vocab):
        raise UsageError(f"metadata.json holds {len(vocab)} vocabulary words but the model's softmax has {units}. "
                         f"Keep model.keras and metadata.json of the same `zoo finetune` run together.")
    return vocab


def captioner_family(model):
    """The zoo.models module that built this captioner, told by its decoder's (stable) layer names."""
    import importlib

    names = {layer.name for layer in model.get_layer("decoder").layers}
    return importlib.import_module("zoo.models." + ("show_attend_tell" if "attention_lstm" in names else "show_and_tell"))


def attention_grid(model) -> tuple[int, int] | None:
    """(rows, columns) of the feature map an attention captioner attends over; None for Show and Tell."""
    family = captioner_family(model)
    return family.attention_grid(model) if hasattr(family, "attention_grid") else None


def _decoding_models(model, *, from_features: bool):
    cache = getattr(model, "_zoo_caption_models", None)
    if cache is None:
        cache = {}
        object.__setattr__(model, "_zoo_caption_models", cache)  # not model state: keep it off Keras tracking
    key = "features" if from_features else "image"
    family = captioner_family(model)
    if key not in cache:
        cache[key] = family.features_to_state_model(model) if from_features else family.encoder_model(model)
    if "step" not in cache:
        cache["step"] = family.step_model(model)
    return cache[key], cache["step"]


def generate(model, inputs: np.ndarray, *, vocab: Sequence[str], beam_size: int = 3, max_length: int = 20,
             alpha: float = 1.0, from_features: bool = False, batch_size: int = 64) -> list[dict]:
    """Captions for a batch of images (or encoder features): [{"caption", "log_prob", "tokens"}], and
    for an attention captioner "attention": float32 (words, rows, columns), each word's weights
    over the feature map (they sum to 1).

    beam_size 1 is greedy decoding; alpha is the length-normalisation exponent of beam search.
    """
    from zoo.tasks.captioning.decode import beam_search, greedy
    from zoo.tasks.captioning.text import decode

    start, step = _decoding_models(model, from_features=from_features)
    grid = attention_grid(model)

    def step_fn(tokens, state):
        out = [np.asarray(t) for t in step([tokens, *state], training=False)]
        trace = out[3] if len(out) > 3 else None
        return out[0].astype("float64"), (out[1], out[2], *state[2:]), trace

    out: list[dict] = []
    for lo in range(0, len(inputs), batch_size):
        chunk = np.asarray(inputs[lo : lo + batch_size], "float32")
        state = tuple(np.asarray(t) for t in start(chunk, training=False))
        if int(beam_size) == 1:
            hyps = greedy(step_fn, state, max_length=max_length)
        else:
            hyps = beam_search(step_fn, state, beam_size=beam_size, max_length=max_length, alpha=alpha)
        for hyp in hyps:
            record = {"caption": decode(hyp.ids, vocab), "log_prob": hyp.log_prob,
                      "tokens": [vocab[i] if 0 <= i < len(vocab) else "[UNK]" for i in hyp.ids]}
            if grid is not None:
                record["attention"] = np.asarray(hyp.trace, "float32").reshape((len(hyp.ids), *grid))
            out.append(record)
    return out


def attention_records(tokens: Sequence[str], maps: np.ndarray, info: dict, input_hw: tuple[int, int]):
    """([{"word", "peak": [x, y]}], maps) for the words of the caption: the peak is the centre of the
    most-attended cell, in pixels of the original image (the resize undone). Padding and <start>,
    which a caption leaves out, are dropped from both."""
    from zoo.tasks.captioning.text import PAD, START
    from zoo.tasks.detection.predict import to_original

    keep = [i for i, word in enumerate(tokens) if word not in (PAD, START)]
    maps = np.asarray(maps, "float32")[keep]
    rows, columns = maps.shape[1:]
    entries = []
    for i, grid in zip(keep, maps):
        row, column = np.unravel_index(int(np.argmax(grid)), grid.shape)
        x, y = (float(column) + 0.5) / columns, (float(row) + 0.5) / rows  # on the model input, 0..1
        ox, oy = to_original(np.array([[x, y, x, y]]), info, input_hw)[0, :2]
        entries.append({"word": tokens[i], "peak": [round(float(ox), 1), round(float(oy), 1)]})
    return entries, maps


def score(model, sources, references: list[list[str]], *, vocab, beam_size: int, max_length: int, alpha: float = 1.0,
          from_features: bool = False, batch_size: int = 64) -> dict[str, Any]:
    """BLEU-1..4, CIDEr and exact match of the captions generated for `sources` against `references`."""
    from zoo.tasks.captioning.metrics import caption_metrics
    from zoo.tasks.captioning.text import tokenize

    outs = generate(model, sources, vocab=vocab, beam_size=beam_size, max_length=max_length, alpha=alpha,
                    from_features=from_features, batch_size=batch_size)
    refs = [[tokenize(c) for c in caps] for caps in references]
    result: dict[str, Any] = {k: round(v, 6) for k, v in caption_metrics(refs, [tokenize(o["caption"]) for o in outs]).items()}
    result.update(num_images=len(outs), num_captions=sum(len(c) for c in references), beam_size=int(beam_size))
    return result
