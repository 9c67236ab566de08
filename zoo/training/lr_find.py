"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural Networks";
fastai's `lr_find`): train for ~100 steps while the LR grows exponentially from 1e-7 to 10, follow
the smoothed loss, stop once it diverges, and suggest a rate a decade below the one at the lowest
loss -- fast, and still well before the loss blows up. The model's weights are restored afterwards.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

MIN_BATCHES = 10  # fewer distinct batches than this and the test measures how the model overfits them
SMOOTHING = 0.98  # exponential moving average of the loss (bias-corrected), as fastai
DIVERGED = 4.0  # stop once the smoothed loss exceeds this many times its minimum


def lr_find(model, data: str | os.PathLike, *, plot: str | os.PathLike | None = None, steps: int = 100,
            start_lr: float = 1e-7, end_lr: float = 10.0, task: str | None = None, **options: Any) -> float:
    """Run an LR range test of `model` on `data` and return the suggested peak learning rate.

    Args:
        model: what zoo.finetune takes (registry name, model directory, keras.Model...).
        data: the task's data folder, as for zoo.finetune.
        plot: where to write the plot of loss against learning rate (e.g. "lr_find.png"); None: none.
        steps, start_lr, end_lr: the exponential ramp.
        task: only for a plain keras.Model without zoo metadata.
        **options: fine-tuning options (weights, batch_size, image_size, augment, ...) as zoo.finetune;
            the test runs the first stage of that recipe (the head alone for a pretrained model).
    Returns:
        The suggested rate; the default rate, with a warning, when the data are too few for a test.
    """
    import warnings

    from zoo.training.finetune import _build, _load, _setup
    from zoo.training.options import make_options
    from zoo.training.precision import policy

    opts = make_options(**{"epochs": 1, "verbose": 0, **options})
    setup = _setup(model, data, opts, task, out=None)
    task_data = _load(setup, data)
    with tempfile.TemporaryDirectory(prefix="zoo-lr-find-") as tmp:
        with policy(setup.precision):
            _, _, run = _build(setup, task_data, Path(tmp))
            rate, message = range_test_lr(run, plot=Path(plot) if plot else None, steps=steps, start_lr=start_lr,
                                          end_lr=end_lr)
    if message.startswith("lr find: too few") or "no suggestion" in message:
        warnings.warn(message, stacklevel=2)
    return rate


def range_test_lr(run, *, plot: Path | None = None, steps: int = 100, start_lr: float = 1e-7,
                  end_lr: float = 10.0) -> tuple[float, str]:
    """(rate, one line saying what was found) for the first stage of `run`; the default rate when the
    data are too few or the loss never falls."""
    from zoo.training.recipe import DEFAULT_LR

    batches = math.ceil(run.num_train / run.opts.batch_size)
    if batches < MIN_BATCHES:
        return DEFAULT_LR, (f"lr find: too few training images for a range test ({run.num_train} images = {batches} "
                            f"batches of {run.opts.batch_size}; it needs {MIN_BATCHES} batches): using the default "
                            f"lr {DEFAULT_LR:g}.")
    lrs, losses = range_test(run, steps=steps, start_lr=start_lr, end_lr=end_lr)
    rate = suggest(lrs, losses)
    if plot is not None:
        from zoo.training.plots import draw_lr_find

        draw_lr_find(lrs, losses, rate, plot)
    where = f" ({plot})" if plot is not None else ""
    if rate is None:
        return DEFAULT_LR, f"lr find: the loss never fell, no suggestion{where}: using the default lr {DEFAULT_LR:g}."
    return rate, f"lr find: suggested lr {rate:.2g} over {len(lrs)} steps{where}."


def range_test(run, *, steps: int = 100, start_lr: float = 1e-7, end_lr: float = 10.0) -> tuple[list, list]:
    """(learning rates, smoothed losses) of the test on the first stage of `run`; weights restored."""
    import keras

    from zoo.training import checkpoint as ck
    from zoo.training.freeze import freeze
    from zoo.training.precision import wrap_optimizer
    from zoo.training.trainer import _stage_data, _unfreeze

    stage = run.stages[0]
    saved = ck.weights_of(run.model.weights)
    trainable = {id(layer): layer.trainable for layer in _layers(run.model)}
    try:
        with run.strategy.scope():
            _ = freeze(run.model, **stage.freeze) if stage.freeze is not None else _unfreeze(run.model)
            probe = replace(stage, epochs=1)
            trained, train_ds, _ = _stage_data(run, probe)
            opt = keras.optimizers.AdamW(start_lr, weight_decay=run.opts.weight_decay) \
                if run.opts.optimizer == "adamw" else keras.optimizers.SGD(start_lr, momentum=0.9, nesterov=True)
            opt = wrap_optimizer(opt, run.precision)
            trained.compile(optimizer=opt, loss=run.loss_fn(), jit_compile=run.xla)
        factor = (end_lr / start_lr) ** (1.0 / max(1, steps - 1))
        lrs, smoothed = [], []
        average, best = 0.0, math.inf
        batches = iter(train_ds.repeat())
        for step in range(steps):
            rate = start_lr * factor ** step
            inner = getattr(opt, "inner_optimizer", opt)
            inner.learning_rate = rate
            batch = next(batches)
            x, y, *weight = batch  # the trainer's batches are (x, y[, sample weight])
            result = trained.train_on_batch(x, y, sample_weight=weight[0] if weight else None)
            loss = float(np.ravel(np.asarray(result))[0])
            if not math.isfinite(loss):
                break
            average = SMOOTHING * average + (1 - SMOOTHING) * loss
            value = average / (1 - SMOOTHING ** (step + 1))
            lrs.append(rate)
            smoothed.append(value)
            best = min(best, value)
            if step > 5 and value > DIVERGED * best:
                break
    finally:
        ck.assign(run.model.weights, saved, "model")
        for layer in _layers(run.model):
            layer.trainable = trainable.get(id(layer), layer.trainable)
    return lrs, smoothed


def suggest(lrs: list[float], losses: list[float]) -> float | None:
    """A tenth of the rate at the lowest smoothed loss (fastai's lr_min / 10); None when the lowest
    loss is at the start of the ramp (the loss never fell)."""
    if len(losses) < 10:
        return None
    low = int(np.argmin(losses))
    if low < 3 or losses[low] > 0.98 * losses[0]:
        return None
    return float(lrs[low] / 10)


def _layers(model) -> list:
    from zoo.training.freeze import flat_layers

    return [model, *flat_layers(model)]
