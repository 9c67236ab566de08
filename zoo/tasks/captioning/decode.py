"""Greedy and beam-search decoding of captions, for any recurrent decoder.

Both work on a `step(tokens, state) -> (log_probs, state, trace)` function over numpy arrays (one
decoder step for a batch of rows), so the search knows no model, is plain numpy and testable with
a fake step; zoo.tasks.captioning.predict builds the step from a trained captioner.
`state` is a tuple of arrays with one row per partial caption (an LSTM's h and c, and whatever
else a row carries, such as an attention model's feature map): beam search reorders every array
of it with the rows it keeps. `trace` is None, or one array row per partial caption that the
search records for each word written (an attention model's weights over the image), returned
as the hypothesis's `trace`.

Beam search keeps, per image, the `beam_size` best partial captions by total log-probability. A
candidate ending in <end> leaves the beam as a finished caption, so the beam narrows until no
partial caption is left or `max_length` words were written (then the partial ones count as
finished). The result is the finished caption with the best length-normalised score
`log_prob / length ** alpha` (length counts the <end> token; alpha = 0 ranks by total
log-probability). With beam_size 1 this is exactly greedy decoding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from zoo.errors import UsageError
from zoo.tasks.captioning.text import END_ID, START_ID

State = tuple[np.ndarray, ...]
Step = Callable[[np.ndarray, State], tuple[np.ndarray, State, "np.ndarray | None"]]


@dataclass
class Hypothesis:
    ids: list[int]  # words written, <end> excluded
    log_prob: float
    finished: bool
    trace: list = field(default_factory=list)  # the step's trace row for each word written

    def score(self, alpha: float) -> float:
        length = len(self.ids) + (1 if self.finished else 0)
        return self.log_prob / max(length, 1) ** alpha


def _check(beam_size: int, max_length: int) -> None:
    if int(beam_size) < 1:
        raise UsageError(f"`beam_size` must be >= 1. Received: beam_size={beam_size!r}.")
    if int(max_length) < 1:
        raise UsageError(f"`max_length` must be >= 1. Received: max_length={max_length!r}.")


def greedy(step: Step, state: State, *, max_length: int) -> list[Hypothesis]:
    """The most likely next word at every step, for a batch of initial states."""
    _check(1, max_length)
    max_length = int(max_length)
    n = state[0].shape[0]
    tokens = np.full((n, 1), START_ID, "int32")
    hyps = [Hypothesis([], 0.0, False) for _ in range(n)]
    for t in range(max_length + 1):
        logp, state, trace = step(tokens, state)
        best = logp.argmax(-1)
        if t == max_length:
            best[:] = END_ID  # no room for another word
        for i, hyp in enumerate(hyps):
            if hyp.finished:
                continue
            hyp.log_prob += float(logp[i, best[i]])
            if best[i] == END_ID:
                hyp.finished = True
            else:
                hyp.ids.append(int(best[i]))
                if trace is not None:
                    hyp.trace.append(trace[i])
        if all(hyp.finished for hyp in hyps):
            break
        tokens = best.astype("int32")[:, None]
    return hyps


def beam_search(step: Step, state: State, *, beam_size: int = 3, max_length: int = 20,
                alpha: float = 1.0) -> list[Hypothesis]:
    """The best caption per initial state (see the module docstring); all images step together."""
    _check(beam_size, max_length)
    k, max_length = int(beam_size), int(max_length)
    n = state[0].shape[0]
    alive: list[list[Hypothesis]] = [[Hypothesis([], 0.0, False)] for _ in range(n)]
    finished: list[list[Hypothesis]] = [[] for _ in range(n)]
    tokens = np.full((n, 1), START_ID, "int32")
    for t in range(max_length + 1):
        logp, state, trace = step(tokens, state)
        rows, words, start = [], [], 0
        for i in range(n):
            count = len(alive[i])
            if not count:
                continue
            block = logp[start : start + count]
            totals = np.array([hyp.log_prob for hyp in alive[i]])[:, None] + block
            if t == max_length:  # no room for another word: only <end> may follow
                masked = np.full_like(totals, -np.inf)
                masked[:, END_ID] = totals[:, END_ID]
                totals = masked
            width = k - len(finished[i])  # the beam narrows as captions finish
            flat = totals.ravel()
            order = np.argsort(-flat, kind="stable")[:width]
            next_alive = []
            for index in order:
                if not np.isfinite(flat[index]):
                    continue
                row, word = divmod(int(index), totals.shape[1])
                parent = alive[i][row]
                if word == END_ID:
                    finished[i].append(Hypothesis(list(parent.ids), float(flat[index]), True, list(parent.trace)))
                else:
                    grown = parent.trace + [trace[start + row]] if trace is not None else []
                    next_alive.append(Hypothesis(parent.ids + [word], float(flat[index]), False, grown))
                    rows.append(start + row)
                    words.append(word)
            alive[i] = next_alive
            start += count
        if not rows:
            break
        state = tuple(array[rows] for array in state)
        tokens = np.array(words, "int32")[:, None]
    # max() keeps the first of equal scores: the caption that finished first.
    return [max(finished[i] or alive[i], key=lambda hyp: hyp.score(alpha)) for i in range(n)]
