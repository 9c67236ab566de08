"""Caption metrics: corpus BLEU-1..4 (nltk's corpus_bleu numbers) and CIDEr-D (coco-caption's).

Both take tokenised text: `references` is, per image, a list of reference captions (lists of
words); `hypotheses` is, per image, one caption (a list of words). Pure Python, no TensorFlow.

BLEU follows nltk.translate.bleu_score.corpus_bleu without smoothing: clipped n-gram counts and
hypothesis n-gram totals (at least 1 per sentence) summed over the corpus, the closest reference
length (ties: the shorter) for the brevity penalty, 0 when no unigram matches, and a zero
higher-order count replaced by the smallest float (so BLEU-4 is ~1e-77, not exactly 0).

CIDEr-D follows pycocoevalcap.cider (Vedantam et al. 2015): tf-idf n-gram vectors (n = 1..4,
document frequency over each image's reference set), clipped cosine similarity per n, a Gaussian
length penalty (sigma 6, "length" being the bigram count exactly as coco-caption does), averaged
over n and references, times 10, averaged over images.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction

Tokens = Sequence[str]


def _ngrams(words: Tokens, n: int) -> Counter:
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def corpus_bleu(references: Sequence[Sequence[Tokens]], hypotheses: Sequence[Tokens], *, max_n: int = 4) -> list[float]:
    """[BLEU-1, ..., BLEU-max_n] of a corpus, equal to nltk's corpus_bleu with uniform weights."""
    if len(references) != len(hypotheses):
        raise ValueError(f"BLEU needs one reference list per hypothesis. Received {len(references)} reference "
                         f"lists and {len(hypotheses)} hypotheses.")
    numerators = [0] * (max_n + 1)
    denominators = [0] * (max_n + 1)
    hyp_total = ref_total = 0
    for refs, hyp in zip(references, hypotheses):
        hyp = list(hyp)
        ref_counts_by_n = {n: [_ngrams(list(r), n) for r in refs] for n in range(1, max_n + 1)}
        for n in range(1, max_n + 1):
            counts = _ngrams(hyp, n)
            clipped = sum(min(c, max((rc[g] for rc in ref_counts_by_n[n]), default=0)) for g, c in counts.items())
            numerators[n] += clipped
            denominators[n] += max(1, sum(counts.values()))
        hyp_total += len(hyp)
        ref_lens = [len(r) for r in refs]
        ref_total += min(ref_lens, key=lambda length: (abs(length - len(hyp)), length)) if ref_lens else 0
    if numerators[1] == 0:
        return [0.0] * max_n
    if hyp_total > ref_total:
        bp = 1.0
    elif hyp_total == 0:
        bp = 0.0
    else:
        bp = math.exp(1 - ref_total / hyp_total)
    logs = [math.log(Fraction(numerators[n], denominators[n])) if numerators[n] else math.log(sys.float_info.min)
            for n in range(1, max_n + 1)]
    scores = []
    for order in range(1, max_n + 1):
        weight = 1.0 / order
        scores.append(bp * math.exp(math.fsum(weight * logs[n] for n in range(order))))
    return scores


def _tfidf(counts: Counter, df: dict, log_images: float, n: int):
    vec: list[dict] = [{} for _ in range(n)]
    norm = [0.0] * n
    length = 0
    for gram, tf in counts.items():
        k = len(gram) - 1
        value = float(tf) * (log_images - math.log(max(1.0, df.get(gram, 0.0))))
        vec[k][gram] = value
        norm[k] += value * value
        if k == 1:  # coco-caption's "length" counts bigrams; kept for identical numbers
            length += tf
    return vec, [math.sqrt(v) for v in norm], length


def cider_d(references: Sequence[Sequence[Tokens]], hypotheses: Sequence[Tokens], *, n: int = 4,
            sigma: float = 6.0) -> tuple[float, list[float]]:
    """(corpus CIDEr-D, per-image scores), equal to pycocoevalcap's Cider().compute_score."""
    if len(references) != len(hypotheses):
        raise ValueError(f"CIDEr needs one reference list per hypothesis. Received {len(references)} reference "
                         f"lists and {len(hypotheses)} hypotheses.")
    if not hypotheses:
        return 0.0, []

    def grams(words: Tokens) -> Counter:
        out: Counter = Counter()
        for k in range(1, n + 1):
            out.update(_ngrams(list(words), k))
        return out

    ref_counts = [[grams(r) for r in refs] for refs in references]
    hyp_counts = [grams(h) for h in hypotheses]
    df: Counter = Counter()
    for refs in ref_counts:
        df.update({g for r in refs for g in r})
    log_images = math.log(float(len(references)))
    scores = []
    for hyp, refs in zip(hyp_counts, ref_counts):
        vec, norm, length = _tfidf(hyp, df, log_images, n)
        total = [0.0] * n
        for ref in refs:
            vec_r, norm_r, length_r = _tfidf(ref, df, log_images, n)
            penalty = math.exp(-((length - length_r) ** 2) / (2 * sigma**2))
            for k in range(n):
                val = sum(min(v, vec_r[k].get(g, 0.0)) * vec_r[k].get(g, 0.0) for g, v in vec[k].items())
                if norm[k] != 0 and norm_r[k] != 0:
                    val /= norm[k] * norm_r[k]
                total[k] += val * penalty
        scores.append(sum(total) / n / max(len(refs), 1) * 10.0)
    return sum(scores) / len(scores), scores


def caption_metrics(references: Sequence[Sequence[Tokens]], hypotheses: Sequence[Tokens]) -> dict[str, float]:
    """bleu1..bleu4, cider, and exact (share of hypotheses equal to one of their references)."""
    bleu = corpus_bleu(references, hypotheses)
    cider, _ = cider_d(references, hypotheses)
    exact = sum(any(list(h) == list(r) for r in refs) for refs, h in zip(references, hypotheses))
    out = {f"bleu{i + 1}": float(b) for i, b in enumerate(bleu)}
    out["cider"] = float(cider)
    out["exact"] = exact / len(hypotheses) if hypotheses else 0.0
    return out
