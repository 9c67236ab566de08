"""Caption text: standardisation, the vocabulary and token ids.

Ids: 0 padding (""), 1 unknown ("[UNK]"), 2 "<start>", 3 "<end>", then words by falling count
(ties alphabetical), keeping words seen at least `min_count` times. This is exactly the layout of
keras.layers.TextVectorization built with `vocabulary=["<start>", "<end>", *words]`, which does the
encoding; the vocabulary list is stored in metadata.json ("vocabulary") so prediction maps ids
back to the same words without TensorFlow.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from zoo.errors import UsageError

PAD, UNK, START, END = "", "[UNK]", "<start>", "<end>"
PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3
SPECIALS = (PAD, UNK, START, END)

# Punctuation becomes a space ("left-of" -> "left of"); apostrophes join ("dog's" -> "dogs").
_PUNCT = re.compile(r"[!\"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~]")


def standardize(text: str) -> str:
    """Lower case, punctuation removed, whitespace collapsed: the form captions are scored in."""
    text = _PUNCT.sub(" ", str(text).lower()).replace("'", "")
    return " ".join(text.split())


def tokenize(text: str) -> list[str]:
    return standardize(text).split()


def build_vocabulary(captions: Iterable[str], *, min_count: int = 1, max_size: int | None = None) -> list[str]:
    """The id -> word list from training captions (specials first, then frequent words).

    Args:
        captions: raw caption strings.
        min_count: keep words seen at least this many times; rarer ones become "[UNK]".
        max_size: cap on the list's length, specials included (None: no cap).
    """
    if int(min_count) < 1:
        raise UsageError(f"`min_count` must be >= 1. Received: min_count={min_count!r}.")
    counts = Counter(word for caption in captions for word in tokenize(caption))
    words = sorted((w for w, n in counts.items() if n >= min_count and w not in SPECIALS), key=lambda w: (-counts[w], w))
    vocab = list(SPECIALS) + words
    if max_size is not None:
        if int(max_size) < len(SPECIALS) + 1:
            raise UsageError(f"`max_size` must be at least {len(SPECIALS) + 1}. Received: max_size={max_size!r}.")
        vocab = vocab[: int(max_size)]
    if len(vocab) == len(SPECIALS):
        raise UsageError(f"No word occurs at least min_count={min_count} times in the captions. "
                         f"Lower `min_count` or give more captions.")
    return vocab


def check_vocabulary(vocab: Sequence[str]) -> list[str]:
    vocab = [str(w) for w in vocab]
    if tuple(vocab[: len(SPECIALS)]) != SPECIALS:
        raise UsageError(f"A caption vocabulary must start with {list(SPECIALS)}. Received: {vocab[:4]!r}. "
                         f"Re-create the model directory with `zoo finetune`.")
    return vocab


def vectorizer(vocab: Sequence[str], *, length: int):
    """keras.layers.TextVectorization mapping standardised text to `length` ids (0-padded)."""
    import keras

    vocab = check_vocabulary(vocab)
    return keras.layers.TextVectorization(standardize=None, split="whitespace", output_mode="int",
                                          output_sequence_length=int(length), vocabulary=vocab[2:])


def encode(captions: Sequence[str], vocab: Sequence[str], *, max_length: int):
    """Captions -> int32 array (n, max_length + 2): <start> words (truncated to max_length) <end> 0...

    Training feeds ids[:, :-1] and predicts ids[:, 1:] (teacher forcing).
    """
    import numpy as np

    texts = [" ".join([START, *tokenize(c)[: int(max_length)], END]) for c in captions]
    if not texts:
        return np.zeros((0, int(max_length) + 2), "int32")
    layer = vectorizer(vocab, length=int(max_length) + 2)
    return np.asarray(layer(texts)).astype("int32")


def decode(ids: Iterable[int], vocab: Sequence[str]) -> str:
    """Ids -> caption text: stops at <end>, drops <start> and padding."""
    words = []
    for i in ids:
        i = int(i)
        if i == END_ID:
            break
        if i in (PAD_ID, START_ID):
            continue
        words.append(vocab[i] if 0 <= i < len(vocab) else UNK)
    return " ".join(words)
