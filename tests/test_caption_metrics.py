"""Caption metrics: corpus BLEU-1..4 equal nltk's corpus_bleu, CIDEr-D equals pycocoevalcap's."""

import random
import warnings

import pytest

from zoo.tasks.captioning.metrics import caption_metrics, cider_d, corpus_bleu

WORDS = "a red blue green circle square triangle left right of above below the dog runs".split()
WEIGHTS = [(1.0,), (0.5, 0.5), (1 / 3, 1 / 3, 1 / 3), (0.25, 0.25, 0.25, 0.25)]


def nltk_bleu(refs, hyps):
    from nltk.translate.bleu_score import corpus_bleu as reference

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nltk warns on zero higher-order overlaps
        return reference(refs, hyps, weights=WEIGHTS)


def random_corpus(rng, *, allow_empty: bool):
    n = rng.randint(1, 6)
    refs = [[[rng.choice(WORDS) for _ in range(rng.randint(0 if allow_empty else 1, 10))]
             for _ in range(rng.randint(1, 4))] for _ in range(n)]
    hyps = [[rng.choice(WORDS) for _ in range(rng.randint(0 if allow_empty else 1, 10))] for _ in range(n)]
    return refs, hyps


FIXED = [
    # nltk's own docstring example (two hypotheses, several references)
    ([["It is a guide to action that ensures that the military will forever heed Party commands".split(),
       "It is the guiding principle which guarantees the military forces always being under the command of the Party".split(),
       "It is the practical guide for the army always to heed the directions of the party".split()],
      ["he was interested in world history because he read the book".split()]],
     ["It is a guide to action which ensures that the military always obeys the commands of the party".split(),
      "he read the book because he was interested in world history".split()]),
    # perfect match
    ([["a red circle left of a blue square".split()]], ["a red circle left of a blue square".split()]),
    # no unigram overlap -> 0
    ([["a red circle".split()]], ["dog runs".split()]),
    # unigrams but no 4-grams (nltk's smallest-float rule), hypothesis shorter than 4
    ([["a red circle left of a blue square".split(), "a blue square right of a red circle".split()]],
     ["a red".split()]),
    # brevity penalty with ties in closest reference length
    ([["a b c d e".split(), "a b c".split()], ["x y z".split()]], ["a b c d".split(), "x y".split()]),
    # an empty hypothesis in the corpus
    ([["a red circle".split()], ["a blue square".split()]], [[], "a blue square".split()]),
]


@pytest.mark.parametrize("refs,hyps", FIXED)
def test_bleu_equals_nltk_on_fixed_corpora(refs, hyps):
    assert corpus_bleu(refs, hyps) == pytest.approx(nltk_bleu(refs, hyps), rel=1e-12, abs=1e-300)


def test_bleu_equals_nltk_on_random_corpora():
    rng = random.Random(0)
    for _ in range(200):
        refs, hyps = random_corpus(rng, allow_empty=True)
        assert corpus_bleu(refs, hyps) == pytest.approx(nltk_bleu(refs, hyps), rel=1e-12, abs=1e-300), (refs, hyps)


def test_bleu_is_not_trivially_one_or_zero():
    refs = [["a red circle left of a blue square".split()]]
    scores = corpus_bleu(refs, ["a red circle left of a green square".split()])
    assert 0.3 < scores[3] < scores[2] < scores[1] < scores[0] < 1.0


def test_cider_equals_pycocoevalcap():
    cider_module = pytest.importorskip("pycocoevalcap.cider.cider", reason="pycocoevalcap (test extra) not installed")
    rng = random.Random(1)
    for _ in range(60):
        refs, hyps = random_corpus(rng, allow_empty=False)
        gts = {i: [" ".join(r) for r in rr] for i, rr in enumerate(refs)}
        res = {i: [" ".join(h)] for i, h in enumerate(hyps)}
        expected, per_image = cider_module.Cider().compute_score(gts, res)
        mine, mine_per_image = cider_d(refs, hyps)
        assert mine == pytest.approx(float(expected), rel=1e-9, abs=1e-12)
        assert mine_per_image == pytest.approx([float(v) for v in per_image], rel=1e-9, abs=1e-12)


def test_caption_metrics_keys_and_exact_match():
    refs = [["a red circle".split(), "one red circle".split()], ["a blue square".split()]]
    out = caption_metrics(refs, ["one red circle".split(), "a blue circle".split()])
    assert set(out) == {"bleu1", "bleu2", "bleu3", "bleu4", "cider", "exact"}
    assert out["exact"] == 0.5
