"""Progress of a run: one epoch count across stages ("epoch 6/15"), a bar per epoch, an ETA for the whole run.

Keras's own progress bar counts each `fit` call (one per stage) on its own and knows nothing of the
stages after it; this callback replaces it.
"""

from __future__ import annotations

import time


class Progress:
    """Keras callback (built lazily: no keras at import). verbose 1: a bar per epoch and a line at its
    end; verbose 2: the line only; 0: nothing."""

    def __new__(cls, *args, **kwargs):
        import keras

        klass = type("ZooProgress", (_ProgressImpl, keras.callbacks.Callback), {})
        obj = keras.callbacks.Callback.__new__(klass)
        klass.__init__(obj, *args, **kwargs)
        return obj


class _ProgressImpl:
    def __init__(self, run, stage_index: int, starts: list[int], steps: int):
        import keras

        keras.callbacks.Callback.__init__(self)
        self.run, self.stage_index, self.starts, self.steps = run, stage_index, list(starts), max(1, int(steps))
        self.total = self.starts[-1]
        self.verbose = int(run.opts.verbose)
        self.bar = None
        self.t0 = time.time()
        self.epoch_times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.time()
        if self.verbose == 1:
            import keras

            print(f"epoch {epoch + 1}/{self.total} ({self.run.stages[self.stage_index].name})", flush=True)
            self.bar = keras.utils.Progbar(self.steps, stateful_metrics=None, verbose=1)

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None:
            values = [(k, float(v)) for k, v in (logs or {}).items() if _scalar(v)]
            self.bar.stateful_metrics.update(k for k, _ in values)  # Keras's logs are already running means
            self.bar.update(min(batch + 1, self.steps), values=values, finalize=False)

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.time() - self.t0
        self.epoch_times.append(seconds)
        if self.bar is not None:
            self.bar.update(self.steps, finalize=True)
            self.bar = None
        if not self.verbose:
            return
        logs = {k: float(v) for k, v in (logs or {}).items() if _scalar(v)}
        stage = self.run.stages[self.stage_index].name
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if k != "learning_rate")
        print(f"epoch {epoch + 1}/{self.total} {stage}  {metrics}  {seconds:.1f}s  "
              f"ETA {_clock(self.eta(epoch + 1))}", flush=True)

    def eta(self, done: int) -> float:
        """Seconds left for the whole run: this stage's mean epoch time times the epochs still planned
        (later stages may be slower, e.g. after a head stage on cached features: a first estimate)."""
        if not self.epoch_times:
            return 0.0
        recent = self.epoch_times[1:] or self.epoch_times  # the first epoch also compiles
        return sum(recent) / len(recent) * max(0, self.total - done)


def _scalar(value) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
