"""Caption vocabulary: Keras TextVectorization layout, min count, special tokens, round trip."""

import pytest

from zoo.errors import UsageError
from zoo.tasks.captioning.text import (END_ID, PAD_ID, SPECIALS, START_ID, UNK_ID, build_vocabulary, decode, encode,
                                       standardize)

CAPTIONS = ["A red circle, left of a blue square.", "a blue square right of a red circle",
            "A dog's toy!", "a red triangle above a red circle"]


def test_vocabulary_layout_and_min_count():
    vocab = build_vocabulary(CAPTIONS, min_count=2)
    assert tuple(vocab[:4]) == SPECIALS
    assert vocab[4] == "a"  # most frequent first
    assert "dogs" not in vocab and "toy" not in vocab  # seen once, below min_count
    counts = {"red": 4, "circle": 3, "blue": 2, "square": 2, "of": 2}
    assert [w for w in vocab[4:] if w in counts] == sorted(counts, key=lambda w: (-counts[w], w))


def test_round_trip_through_text_vectorization():
    vocab = build_vocabulary(CAPTIONS, min_count=1)
    ids = encode(CAPTIONS, vocab, max_length=12)
    assert ids.shape == (4, 14)
    assert (ids[:, 0] == START_ID).all()
    for row, caption in zip(ids, CAPTIONS):
        assert decode(row, vocab) == standardize(caption)
        n = len(standardize(caption).split())
        assert row[n + 1] == END_ID and (row[n + 2:] == PAD_ID).all()


def test_unknown_words_and_truncation():
    vocab = build_vocabulary(CAPTIONS, min_count=2)
    ids = encode(["a zebra of a red circle"], vocab, max_length=3)[0]
    assert list(ids) == [START_ID, vocab.index("a"), UNK_ID, vocab.index("of"), END_ID]
    assert decode(ids, vocab) == "a [UNK] of"


def test_vocabulary_errors():
    with pytest.raises(UsageError, match="min_count"):
        build_vocabulary(CAPTIONS, min_count=0)
    with pytest.raises(UsageError, match="No word occurs"):
        build_vocabulary(["one two"], min_count=3)
