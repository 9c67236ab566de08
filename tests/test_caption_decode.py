"""Greedy and beam-search decoding on a known next-word model (a numpy table), plus a real decoder."""

import numpy as np
import pytest

from zoo.errors import UsageError
from zoo.tasks.captioning.decode import beam_search, greedy
from zoo.tasks.captioning.text import END_ID, START_ID

V = 8


def markov_step(table):
    """step(tokens, state): next-word log-probs depend on the previous token and the row's h[:, 0]."""

    def step(tokens, state):
        rows = table[state[0][:, 0].astype(int), tokens[:, 0]]
        return np.log(rows), state, None

    return step


def random_table(seed, images=5):
    rng = np.random.default_rng(seed)
    t = rng.gamma(0.3, size=(images, V, V)) + 1e-6
    return t / t.sum(-1, keepdims=True)


def states(n):
    h = np.arange(n, dtype="float32")[:, None].repeat(2, 1)
    return (h, np.zeros_like(h))


@pytest.mark.parametrize("seed", range(6))
def test_beam_size_one_equals_greedy(seed):
    step = markov_step(random_table(seed))
    state = states(5)
    g = greedy(step, state, max_length=6)
    b = beam_search(step, state, beam_size=1, max_length=6)
    assert [x.ids for x in g] == [x.ids for x in b]
    assert [x.log_prob for x in g] == pytest.approx([x.log_prob for x in b])


def test_beam_search_escapes_the_greedy_trap():
    # From <start>: word 4 (p .6) leads to flat next words; word 5 (p .4) leads surely to <end>.
    t = np.full((1, V, V), 1e-9)
    t[0, START_ID, 4], t[0, START_ID, 5] = 0.6, 0.4
    t[0, 4, 4:8] = 0.25
    t[0, 5, END_ID] = 1.0
    t[0, 6, END_ID] = t[0, 7, END_ID] = 1.0
    t[0, 4, END_ID] = 1e-9
    t /= t.sum(-1, keepdims=True)
    step = markov_step(t)
    state = states(1)
    assert greedy(step, state, max_length=5)[0].ids[0] == 4
    best = beam_search(step, state, beam_size=3, max_length=5, alpha=0.0)[0]
    assert best.ids == [5] and best.log_prob == pytest.approx(np.log(0.4), abs=1e-6)


def test_length_normalisation_prefers_longer_likely_captions():
    # "4 <end>": p .25 (best total); "5 6 7 <end>": p .1715 but the best per-word log-probability.
    t = np.full((1, V, V), 1e-12)
    t[0, START_ID, 4] = t[0, START_ID, 5] = 0.5
    t[0, 4, END_ID] = t[0, 4, 6] = 0.5
    t[0, 5, 6], t[0, 5, END_ID] = 0.7, 0.3
    t[0, 6, 7], t[0, 6, END_ID] = 0.7, 0.3
    t[0, 7, END_ID], t[0, 7, 4] = 0.7, 0.3
    t /= t.sum(-1, keepdims=True)
    step = markov_step(t)
    state = states(1)
    total = beam_search(step, state, beam_size=4, max_length=6, alpha=0.0)[0]
    mean = beam_search(step, state, beam_size=4, max_length=6, alpha=1.0)[0]
    assert total.ids == [4] and total.log_prob == pytest.approx(np.log(0.25), abs=1e-6)
    assert mean.ids == [5, 6, 7] and mean.log_prob == pytest.approx(np.log(0.5 * 0.7 ** 3), abs=1e-6)


def test_max_length_is_respected():
    t = np.full((1, V, V), 1.0)
    t[0, :, END_ID] = 1e-9
    t /= t.sum(-1, keepdims=True)
    step = markov_step(t)
    state = states(1)
    assert len(greedy(step, state, max_length=3)[0].ids) == 3
    assert len(beam_search(step, state, beam_size=3, max_length=3)[0].ids) == 3


@pytest.mark.parametrize("beam", [1, 3])
def test_every_state_array_follows_its_row_and_each_word_keeps_its_trace(beam):
    """A third state array (a stand-in for an attention model's feature map) must be reordered with
    h; the trace row recorded for each word is the step's output for the row that wrote it."""
    table = random_table(7, images=4)

    def step(tokens, state):
        h, c, image = state
        assert np.array_equal(image[:, 0], h[:, 0] * 10), "a state array lost its row"
        logp = np.log(table[h[:, 0].astype(int), tokens[:, 0]])
        return logp, state, tokens[:, 0].astype("float32") + 100 * h[:, 0]  # previous token, tagged by image

    h, c = states(4)
    hyps = (greedy(step, (h, c, h * 10), max_length=6) if beam == 1 else
            beam_search(step, (h, c, h * 10), beam_size=beam, max_length=6))
    for i, hyp in enumerate(hyps):
        assert len(hyp.trace) == len(hyp.ids)
        assert [float(t) for t in hyp.trace] == [float(w) + 100 * i for w in [START_ID, *hyp.ids][:len(hyp.ids)]]


def test_bad_decoding_options():
    state = states(1)
    with pytest.raises(UsageError, match="beam_size"):
        beam_search(markov_step(random_table(0, 1)), state, beam_size=0)
    with pytest.raises(UsageError, match="max_length"):
        greedy(markov_step(random_table(0, 1)), state, max_length=0)


def test_beam_one_equals_greedy_on_a_real_decoder():
    import keras

    from zoo.models.show_and_tell import build_from_config, make_config
    from zoo.tasks.captioning.predict import generate

    keras.utils.set_random_seed(3)
    config = make_config(backbone="tiny", vocab_size=12, embed_dim=8, units=8, tiny_width=4)
    model = build_from_config(config, input_shape=(32, 32, 3))
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    vocab = ["", "[UNK]", "<start>", "<end>"] + [f"w{i}" for i in range(8)]
    g = generate(model, images, vocab=vocab, beam_size=1, max_length=6)
    b = generate(model, images, vocab=vocab, beam_size=1, max_length=6)
    wide = generate(model, images, vocab=vocab, beam_size=4, max_length=6, alpha=0.0)
    assert [x["caption"] for x in g] == [x["caption"] for x in b]
    # A wider beam never finds a less likely caption (alpha 0 ranks by total log-probability).
    assert all(w["log_prob"] >= x["log_prob"] - 1e-5 for w, x in zip(wide, g))
