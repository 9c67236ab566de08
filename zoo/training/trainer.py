"""The task-agnostic training loop: stages, optimizer, schedule, checkpoint/resume, NaN guard,
early stopping and best weights. zoo.training.finetune prepares the data and model; this runs it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.training import checkpoint as ck
from zoo.training.recipe import Stage

MAX_ROLLBACKS = 3


@dataclass
class Run:
    """Everything the loop needs, independent of the task."""

    model: Any  # the full keras model
    train: Any  # unbatched tf.data of (x, y[, w])
    val: Any  # unbatched or None
    num_train: int
    stages: list[Stage]
    loss_fn: Any  # () -> loss
    metrics_fn: Any  # () -> metrics
    monitor: tuple[str, str]  # ("val_accuracy", "max")
    opts: Any  # TrainOptions
    out: Path
    strategy: Any
    precision: str
    xla: bool
    augment: Any = None  # batched (x, y[, w]) -> same, training passes only
    notes: list[str] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=dict)  # {"value", "epoch"}


class _EpochEnd:
    """Keras callback: NaN/Inf guard per batch; checkpoint, history and early stopping per epoch."""

    def __new__(cls, *args, **kwargs):  # a keras.callbacks.Callback built lazily (no keras at import)
        import keras

        klass = type("ZooEpochCallback", (_EpochEndImpl, keras.callbacks.Callback), {})
        obj = keras.callbacks.Callback.__new__(klass)
        klass.__init__(obj, *args, **kwargs)
        return obj


class _EpochEndImpl:
    def __init__(self, run: Run, stage_index: int, stage_start: int, trained, optimizer, full_model):
        import keras

        keras.callbacks.Callback.__init__(self)
        self.run, self.stage_index, self.stage_start = run, stage_index, stage_start
        self.trained, self.opt, self.full = trained, optimizer, full_model
        self.nan: str | None = None
        self.bad_epochs = 0
        self.t0 = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.time()
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.nan = f"the loss became {float(loss)} at epoch {self.epoch + 1} batch {batch + 1}"
            self.trained.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        bad = [k for k, v in logs.items() if not math.isfinite(v)]
        if self.nan or bad:
            self.nan = self.nan or f"{bad[0]} became {logs[bad[0]]} at epoch {epoch + 1}"
            self.trained.stop_training = True
            return
        run = self.run
        stage = run.stages[self.stage_index]
        row = {"epoch": epoch + 1, "stage": stage.name, "lr": _current_lr(self.opt),
               "time": round(time.time() - self.t0, 3), **{k: round(v, 6) for k, v in logs.items()}}
        run.history.append(row)
        name, mode = run.monitor
        value = logs.get(name, logs.get(name.removeprefix("val_")))
        loss = logs.get("val_loss", logs.get("loss"))
        if value is not None and _improved(value, loss, run.best, mode):
            run.best = {"value": value, "epoch": epoch + 1, "metric": name, "file": f"best-{epoch + 1:04d}.npz",
                        "loss": loss}
            ck.save_arrays(_ckpt(run.out) / run.best["file"], ck.weights_of(self.full.weights))
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        patience = run.opts.early_stopping
        # Not in the first half of a stage: the one-cycle LR is still high there, and a small run's
        # validation accuracy jumps about before it settles.
        settled = epoch + 1 - self.stage_start >= stage.epochs / 2
        if patience and self.bad_epochs >= patience and run.val is not None and settled:
            run.notes.append(f"early stopping in stage {stage.name!r} at epoch {epoch + 1}: "
                             f"{name} did not improve for {patience} epochs")
            self.trained.stop_training = True
        state = {"epoch": epoch + 1, "stage": self.stage_index, "stage_done": epoch + 1 == self.stage_start + stage.epochs,
                 "history": run.history, "best": run.best, "bad_epochs": self.bad_epochs,
                 "lr": [s.lr for s in run.stages], "notes": run.notes}
        ck.write_epoch(run.out, state, ck.weights_of(self.full.weights), ck.weights_of(self.opt.variables))
        for old in _ckpt(run.out).glob("best-*.npz"):
            if old.name != run.best.get("file"):
                old.unlink(missing_ok=True)


def _improved(value: float, loss: float | None, best: dict, mode: str) -> bool:
    """Better on the monitored metric, or equal with a lower loss: accuracy on a small validation
    set ties often, and the lower loss is the better model (and not a reason to stop early)."""
    if not best:
        return True
    if value != best["value"]:
        return value > best["value"] if mode == "max" else value < best["value"]
    return loss is not None and best.get("loss") is not None and loss < best["loss"]


def _ckpt(out: Path) -> Path:
    path = out / ck.CKPT_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def _current_lr(optimizer) -> float:
    try:
        inner = getattr(optimizer, "inner_optimizer", optimizer)
        return float(np.asarray(inner.learning_rate))
    except Exception:  # informative only
        return float("nan")


def make_optimizer(opts, stage: Stage, steps: int):
    """AdamW (or SGD), one-cycle over the stage's steps (linear warm-up from 1% of the peak, then
    cosine decay to 1%), or a constant rate with `schedule="constant"`."""
    import keras

    warmup = int(round(opts.warmup * steps))
    if getattr(opts, "schedule", "onecycle") == "constant":
        schedule = stage.lr
    else:
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=stage.lr * (0.01 if warmup else 1.0),
            decay_steps=max(1, steps - warmup), alpha=0.01,
            warmup_target=stage.lr if warmup else None, warmup_steps=warmup)
    if opts.optimizer == "sgd":
        opt = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True)
    else:
        opt = keras.optimizers.AdamW(schedule, weight_decay=opts.weight_decay)
    return opt


def _batches(dataset, batch_size: int, *, shuffle: bool, seed: int, augment=None, count: int | None = None):
    import tensorflow as tf

    if shuffle:
        dataset = dataset.shuffle(min(count or 4096, 8192), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if augment is not None:
        dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    # uint8 pixels become float32 per batch (4x less memory while shuffling); Keras's distributed
    # build also all-reduces the first batch, which collectives cannot do for uint8.
    dataset = dataset.map(lambda *t: tuple(tf.nest.map_structure(_to_float, t)), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _to_float(tensor):
    import tensorflow as tf

    return tf.cast(tensor, tf.float32) if tensor.dtype == tf.uint8 else tensor


def run_stages(run: Run, *, resume_state: dict | None) -> None:
    """Train every stage; resumes after the last completed epoch of `resume_state`."""
    initial_weights = ck.weights_of(run.model.weights)
    # Each stage starts at the sum of the planned epochs before it, so early stopping leaves a gap
    # in epoch numbers instead of re-using them: an epoch number always means the same thing.
    starts = np.cumsum([0] + [s.epochs for s in run.stages]).tolist()
    rollbacks = 0
    state = resume_state
    index = 0
    if state:
        _restore_run(run, state)
    while index < len(run.stages):
        stage, start = run.stages[index], starts[index]
        end = start + stage.epochs
        done = int(state["epoch"]) if state else 0
        if done >= end or _stopped(run, stage) or (state and state.get("stage", -1) > index):
            index += 1
            continue
        callback = _train_stage(run, index, starts, end, state)
        if callback.nan:
            state = _handle_nan(run, callback.nan, index, rollbacks)
            rollbacks += 1
            if state is None:  # nothing saved yet: start over from the initial weights
                ck.assign(run.model.weights, initial_weights, "model")
                run.history.clear()
            index = 0
            continue
        state = None
        index += 1


def _train_stage(run: Run, index: int, starts: list[int], end: int, state: dict | None) -> _EpochEnd:
    """Freeze, compile, restore a checkpoint when resuming, and fit stage `index` up to epoch `end`."""
    from zoo.training.freeze import freeze
    from zoo.training.progress import Progress

    stage, opts = run.stages[index], run.opts
    start = starts[index]
    with run.strategy.scope():
        report = freeze(run.model, **stage.freeze) if stage.freeze is not None else _unfreeze(run.model)
        trained, train_ds, val_ds = _stage_data(run, stage)
        opt = _compile_stage(run, stage, trained, train_ds)
        initial = _resume_epoch(run, index, start, state, opt)
    if opts.verbose:
        print(f"stage {stage.name}: epochs {initial + 1}-{end}, peak lr {stage.lr:g}, "
              f"{report['trainable_params']:,} trainable / {report['non_trainable_params']:,} frozen params"
              + (", on cached base features" if trained is not run.model else ""), flush=True)
    callback = _EpochEnd(run, index, start, trained, opt, run.model)
    if state and state.get("stage") == index:
        callback.bad_epochs = int(state.get("bad_epochs", 0))
    # One progress line across all stages (zoo.training.progress) instead of Keras's per-stage bars.
    callbacks = [callback, Progress(run, index, starts, math.ceil(run.num_train / opts.batch_size))]
    if opts.tensorboard:
        import keras

        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run.out / "tensorboard"), update_freq="epoch"))
    trained.fit(train_ds, validation_data=val_ds, initial_epoch=initial, epochs=end,
                callbacks=callbacks, verbose=0, shuffle=False)
    return callback


def _compile_stage(run: Run, stage, trained, train_ds):
    """The stage's optimizer (schedule, layer-wise LR decay, loss scaling), built, with `trained` compiled."""
    from zoo.training.precision import wrap_optimizer

    steps = math.ceil(run.num_train / run.opts.batch_size) * stage.epochs
    opt = make_optimizer(run.opts, stage, steps)
    if stage.layer_decay < 1.0:
        from zoo.training.layer_decay import apply_layer_decay, decay_scales

        apply_layer_decay(opt, decay_scales(run.model, decay=stage.layer_decay))
    opt = wrap_optimizer(opt, run.precision)
    trained.compile(optimizer=opt, loss=run.loss_fn(), metrics=run.metrics_fn(), jit_compile=run.xla)
    opt.build(trained.trainable_variables)
    if _multiworker(run.strategy):
        _build_locally(trained, train_ds)
    return opt


def _resume_epoch(run: Run, index: int, start: int, state: dict | None, opt) -> int:
    """The epoch the stage fits from: its first, or the checkpoint's, whose model weights are
    restored (and the optimizer's too when the checkpoint is of this stage)."""
    done = int(state["epoch"]) if state else 0
    if not (state and done > 0):
        return start
    weights, opt_vars = ck.read_epoch(run.out, state)
    ck.assign(run.model.weights, weights, "model")
    if done <= start:
        return start
    if state.get("stage") == index and not state.get("fresh_optimizer"):
        ck.assign(opt.variables, opt_vars, "optimizer")
    return done


def _restore_run(run: Run, state: dict) -> None:
    done = int(state["epoch"])
    run.history[:] = [row for row in state.get("history", []) if row["epoch"] <= done]
    run.best = dict(state.get("best") or {})
    run.notes[:] = list(state.get("notes") or [])
    for stage, lr in zip(run.stages, state.get("lr") or []):
        stage.lr = lr


def _stopped(run: Run, stage: Stage) -> bool:
    return any(note.startswith(f"early stopping in stage {stage.name!r}") for note in run.notes)


def _unfreeze(model) -> dict:
    from zoo.training.freeze import freeze

    return freeze(model, until=0, bn="train")


class NanStop(Exception):
    """The NaN/Inf guard stopped training (--nan stop, or too many rollbacks)."""


def _handle_nan(run: Run, reason: str, index: int, rollbacks: int) -> dict | None:
    """Roll back to the last good checkpoint with half the stage LR, or stop and say why."""
    state = ck.read_state(run.out)
    if run.opts.nan == "stop" or rollbacks >= MAX_ROLLBACKS:
        why = "--nan stop" if run.opts.nan == "stop" else f"{MAX_ROLLBACKS} rollbacks did not help"
        if state:
            weights, _ = ck.read_epoch(run.out, state)
            ck.assign(run.model.weights, weights, "model")
        run.notes.append(f"NaN guard: {reason}; stopped ({why}); kept the weights of epoch {state['epoch'] if state else 0}")
        raise NanStop(run.notes[-1])
    stage = run.stages[index]
    stage.lr /= 2
    note = (f"NaN guard: {reason}; rolled back to epoch {state['epoch'] if state else 0} "
            f"and halved the {stage.name!r} learning rate to {stage.lr:g}")
    print(note, flush=True)
    if state is None:
        run.notes.append(note)
        return None
    # A fresh optimizer: its moments may hold the Inf that caused this.
    state = {**state, "lr": [s.lr for s in run.stages], "notes": list(state.get("notes") or []) + [note],
             "fresh_optimizer": True}
    _restore_run(run, state)
    return state


def _stage_data(run: Run, stage: Stage):
    """(model to train, train batches, val batches): the full model, or the head on cached features."""
    import tensorflow as tf

    opts = run.opts
    batch = opts.batch_size
    use_cache = (stage.cache and opts.cache_features != "off" and run.augment is None
                 and stage.freeze is not None and stage.freeze.get("until") is None
                 and not _multiworker(run.strategy))
    if use_cache:
        from zoo.training import features

        split = features.split_head(run.model)
        if split is not None:
            base, head = split
            t0 = time.time()
            ftrain, rest = features.compute(base, run.train, batch_size=max(batch, 64))
            train = tf.data.Dataset.from_tensor_slices((ftrain, *rest))
            val = None
            if run.val is not None:
                fval, vrest = features.compute(base, run.val, batch_size=max(batch, 64))
                val = tf.data.Dataset.from_tensor_slices((fval, *vrest))
            run.notes.append(f"stage {stage.name!r}: base features cached in {time.time() - t0:.1f}s "
                             f"({ftrain.shape[1:]} per image)")
            return (head, _batches(train, batch, shuffle=True, seed=opts.seed, count=len(ftrain)),
                    _batches(val, batch, shuffle=False, seed=opts.seed) if val is not None else None)
        if opts.cache_features == "on":
            run.notes.append("feature caching skipped: the head is not a simple chain of layers")
    train = _batches(run.train, batch, shuffle=True, seed=opts.seed, augment=run.augment, count=run.num_train)
    val = _batches(run.val, batch, shuffle=False, seed=opts.seed) if run.val is not None else None
    return run.model, train, val


def _build_locally(model, dataset) -> None:
    """Build metrics and loss from one local batch. Keras's own build all-reduces a distributed
    first batch, which fails under MultiWorkerMirroredStrategy (PerReplica -> tensor conversion)."""
    batch = next(iter(dataset.take(1)))
    model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    # Keras 3.x also reduces the scalar logs with strategy.reduce("MEAN", v, axis=0), which fails
    # for scalars under MultiWorkerMirroredStrategy. Logs are then averaged over this worker's
    # replicas only; gradients are still all-reduced across workers by the optimizer.
    from keras.src.backend.tensorflow import trainer as keras_tf_trainer

    keras_tf_trainer._collective_all_reduce_multi_worker = lambda strategy: False


def _multiworker(strategy) -> bool:
    return type(strategy).__name__.startswith("MultiWorker") or "Collective" in type(strategy).__name__
