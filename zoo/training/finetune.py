"""zoo.finetune: transfer learning (or training from scratch) on the user's data -> a model directory.

Task-agnostic: the model's task (a zoo.training.task.Task, named by its registry row or metadata)
reads the data and builds the model; this module checks the inputs, sets precision and strategy,
runs zoo.training.trainer and writes OUT (model.keras, metadata.json, history.csv, curves.png,
task plots).
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from zoo.errors import UsageError
from zoo.training import checkpoint as ck
from zoo.training.options import TrainOptions, chosen_weights, make_options
from zoo.training.task import get_task

# Files a run writes into OUT; --overwrite removes these and nothing else.
ARTEFACTS = ("model.keras", "metadata.json", "history.csv", "curves.png", "confusion_matrix.png", "lr_find.png",
             ck.CKPT_DIR, "tensorboard")


def finetune(model, data: str | os.PathLike, *, out: str | os.PathLike, epochs: int = 10,
             task: str | None = None, **options: Any):
    """Fine-tune `model` on `data` and write the model directory `out`.

    Args:
        model: a registry name ("resnet50"), a model directory or .keras file, "hub:PATH" (a TF-Hub /
            SavedModel feature extractor) or a keras.Model built by zoo.
        data: the task's data folder (classification: class folders or a CSV `path,label`).
        out: the model directory to write. Refused if it holds another run, unless `resume=True`
            (continue after a crash) or `overwrite=True`.
        epochs: all stages together.
        task: only for a plain keras.Model without zoo metadata (default "classification").
        **options: any field of zoo.training.options.TrainOptions (lr, batch_size, precision,
            strategy, augment, unfreeze, layer_decay, label_smoothing, val, ...).
    Returns:
        The trained keras.Model (best epoch's weights when there is validation data).
    """
    opts = make_options(epochs=epochs, **options)
    out = Path(out)
    setup = _setup(model, data, opts, task, out=out)
    state = check_out(out, setup.opts)
    t0 = time.time()
    task_data = _load(setup, data)  # raises UsageError on bad data: nothing written yet
    from zoo.training.precision import policy
    from zoo.training.strategy import worker_info

    with ck.RunLock(out):
        state = check_out(out, setup.opts)  # again, under the lock
        if setup.opts.overwrite and not setup.opts.resume:
            _remove_artefacts(out)
        from zoo.ownership import mark_owned

        mark_owned(out, "finetune")  # from here on OUT is a zoo run that --resume/--overwrite may act on
        with policy(setup.precision):
            keras_model, meta, run = _build(setup, task_data, out)
            if setup.opts.lr == "find" and not state:
                _find_lr(setup, run, task_data, keras_model, out / "lr_find.png")
            for warning in _start_warnings(run):
                _say(run, warning)
            from zoo.training.trainer import run_stages

            if state and setup.opts.verbose:
                print(f"resuming {out} after epoch {state['epoch']}", flush=True)
            run_stages(run, resume_state=state)
        _restore_best(run)
        od = setup.od
        meta = _metadata(keras_model, meta, setup.hooks, task_data, od, run, setup.precision, setup.strategy_name,
                         setup.xla, time.time() - t0)
        for warning in _end_warnings(meta, task_data):
            _say(run, warning)
            meta["training"]["notes"] = run.notes
        _write_outputs(keras_model, meta, setup.hooks, task_data, run, out, worker_info())
    if setup.opts.verbose:
        summary_table(meta, out)
    return keras_model


class _Setup:
    """What a run has decided before its data is read: task hooks, options, precision, strategy."""

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)

    @property
    def od(self):
        """The options as the task hooks take them. "find" and the automatic batch size are
        placeholders until they are resolved."""
        opts = self.opts
        if opts.lr == "find" or opts.lr is None or opts.batch_size is None:
            from zoo.training.recipe import base_lr

            opts = replace(opts, lr=base_lr(opts), batch_size=opts.batch_size or 32)
        return opts


def _setup(model, data, opts: TrainOptions, task: str | None, *, out: Path | None) -> _Setup:
    arch, task_name = resolve_model_ref(model, task)
    if out is not None:
        check_out(out, opts)
    hooks = get_task(task_name)
    opts = replace(opts, task_options=hooks.parse_options(opts.task_options))  # parsed once, checked first
    hooks.check_data(data, opts)  # bad DATA fails in a second, before TensorFlow loads
    from zoo.training.strategy import resolve_strategy
    from zoo.training.precision import default_xla, resolve_precision

    strategy, strategy_name = resolve_strategy(opts.strategy)  # first: multi-worker needs it before other TF ops
    precision = resolve_precision(opts.precision)
    xla = default_xla(opts.xla)
    native = hooks.native_size
    opts = replace(opts, arch=arch if isinstance(arch, str) else None, task=task_name,
                   input_shape=resolve_input_shape(arch, opts, data=data if native else None),
                   replicas=strategy.num_replicas_in_sync,
                   workdir=str(out / ck.CKPT_DIR) if out is not None else None)
    if opts.verbose and native:
        line = _conversion_line(arch, data, opts.input_shape)
        if line:
            print(line, flush=True)
    return _Setup(arch=arch, task_name=task_name, hooks=hooks, opts=opts, strategy=strategy,
                  strategy_name=strategy_name, precision=precision, xla=xla)


def _load(setup: _Setup, data):
    """The task's data; then the batch size, automatic unless given, follows the number of images."""
    import keras

    from zoo.training.recipe import auto_batch_size

    keras.utils.set_random_seed(setup.opts.seed)  # same seed, same data split, init and shuffles
    task_data = setup.hooks.load_data(data, setup.od)
    if setup.opts.batch_size is None:
        num_train = task_data.num_train or int(task_data.train.cardinality())
        setup.opts = replace(setup.opts, batch_size=auto_batch_size(num_train, setup.opts.replicas))
    return task_data


def _build(setup: _Setup, task_data, out: Path):
    """(keras model, its metadata, the trainer's Run) under the run's strategy."""
    from zoo.modeldir import get_meta

    with setup.strategy.scope():
        keras_model = setup.hooks.build_model(setup.arch, task_data, setup.od)
    meta = get_meta(keras_model)
    stages = _stages(setup, keras_model, task_data)
    run = _make_run(keras_model, task_data, stages, setup.hooks, setup.od, setup.opts, out, setup.strategy,
                    setup.precision, setup.xla)
    return keras_model, meta, run


def _stages(setup: _Setup, keras_model, task_data):
    return setup.hooks.stages(keras_model, task_data, setup.od)


def _find_lr(setup: _Setup, run, task_data, keras_model, plot: Path) -> None:
    """--lr find: an LR range test on the first stage; its suggestion becomes the base LR."""
    from zoo.training.lr_find import range_test_lr

    found, message = range_test_lr(run, plot=plot)
    _say(run, message)
    setup.opts = replace(setup.opts, lr=found)
    run.opts = setup.opts
    run.stages = _stages(setup, keras_model, task_data)


def _say(run, message: str) -> None:
    run.notes.append(message)
    if run.opts.verbose:
        print(message, flush=True)


def _conversion_line(arch, data, shape) -> str | None:
    """One line when the model's input changes the images: their size, or colour to grayscale."""
    from zoo.training.recipe import image_stats

    stats = image_stats(data)
    if stats is None:
        return None
    h, w, c = shape
    gray = stats["colour"] and c == 1
    if not gray and stats["side"] == max(h, w):
        return None
    name = arch if isinstance(arch, str) else "the model"
    what = f"{stats['side']} px {'colour' if stats['colour'] else 'grayscale'} images"
    into = f"{h}x{w} {'grayscale' if c == 1 else 'RGB'}"
    return f"{name} takes {into} input: your {what} (median side) are resized" + \
        (" and converted to grayscale" if gray else "") + " (--image-size changes the size of a model built here)."


def _start_warnings(run) -> list[str]:
    from zoo.tf_settings import onednn_warning
    from zoo.training.recipe import short_stages

    out = ["warning: " + w for w in short_stages(run.stages, num_train=run.num_train, batch_size=run.opts.batch_size)]
    return out + [w for w in [onednn_warning()] if w]


def _end_warnings(meta: dict, task_data) -> list[str]:
    """Validation accuracy near chance: say so, and what to try."""
    accuracy = (meta.get("metrics") or {}).get("accuracy")
    k = len(task_data.labels or [])
    if not isinstance(accuracy, float) or k < 2:
        return []
    val_y = (task_data.extras.get("val_arrays") or (None, None))[1]
    if val_y is not None and len(val_y):
        import numpy as np

        chance = float(np.bincount(np.asarray(val_y)).max() / len(val_y))  # always guessing the largest class
    else:
        chance = 1.0 / k
    if accuracy > chance + 0.25 * (1.0 - chance):
        return []
    return [f"warning: validation accuracy {accuracy:.2f} is near chance ({chance:.2f} for {k} classes): the model "
            f"learned little. Try more --epochs, --lr find, --augment none, pretrained --weights, or more images "
            f"per class; curves.png shows whether the loss still falls."]


def resolve_model_ref(model, task: str | None) -> tuple[Any, str]:
    """(arch, task name): registry name, model dir / .keras file, "hub:PATH" or a keras.Model."""
    from zoo.modeldir import get_meta, read_meta, reference_kind

    kind = reference_kind(model, hub=True)
    if kind == "model":
        return model, get_meta(model).get("task") or task or "classification"
    if kind == "hub":
        return str(model), task or "classification"
    if kind == "saved":
        path = Path(os.fspath(model)).expanduser()
        return str(path), read_meta(path).get("task") or task or "classification"
    from zoo.registry import get_spec

    spec = get_spec(os.fspath(model))  # unknown names raise with close matches
    return spec.name, spec.task


def check_out(out: Path, opts: TrainOptions) -> dict | None:
    """The resume state, or None for a fresh run; refuses an OUT holding another run, and refuses
    --resume/--overwrite on a folder that is not a zoo run (nothing is touched)."""
    from zoo.ownership import MARK, is_owned

    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {str(out)!r} is a file. Give a directory for the model.")
    if not out.exists():
        return None
    present = [p.name for p in out.iterdir() if p.name not in (ck.LOCK, MARK)]
    if not present:
        return None
    if not is_owned(out, "finetune"):
        flag = "--resume" if opts.resume else "--overwrite" if opts.overwrite else None
        if flag:
            raise UsageError(f"{flag} refused: --out {str(out)!r} is not a zoo finetune run (no {MARK} mark) and "
                             f"zoo never deletes files it did not write; nothing was touched. Choose another --out.")
        raise UsageError(f"--out {str(out)!r} already holds {len(present)} entries ({', '.join(sorted(present)[:3])}...) "
                         f"and is not a zoo run. Choose another --out.")
    links = [name for name in ARTEFACTS if (out / name).is_symlink()]
    if links:
        raise UsageError(f"--out {str(out)!r} has a symbolic link where zoo writes {links[0]!r}; zoo never follows "
                         f"links to remove or replace files. Remove the link or choose another --out.")
    state = ck.read_state(out)
    if opts.resume:
        if state is None and (out / "model.keras").exists():
            raise UsageError(f"--out {str(out)!r} holds a finished run, nothing to resume. "
                             f"Use --overwrite to train again or choose another --out.")
        return state
    if not opts.overwrite:
        what = "a run in progress (checkpoint/)" if state else f"{len(present)} entries ({', '.join(sorted(present)[:3])}...)"
        raise UsageError(f"--out {str(out)!r} already holds {what}. Pass --resume to continue it, "
                         f"--overwrite to replace it, or choose another --out.")
    return None


def _remove_artefacts(out: Path) -> None:
    from zoo.ownership import remove_owned

    remove_owned(out, ARTEFACTS)


def resolve_input_shape(arch, opts: TrainOptions, *, data=None) -> tuple[int, int, int]:
    """(H, W, C) the model will take. `data` (a folder), for a registry model trained from scratch
    without --image-size: train at the data's own image size instead of upsampling to the default."""
    from zoo.modeldir import reference_kind

    size = opts.image_size
    kind = reference_kind(arch, hub=True)
    if size is None and data is not None and kind == "name" and chosen_weights(arch, opts.weights) is None:
        from zoo.training.recipe import native_size

        size = native_size(data, arch)
    if kind == "model":
        shape = tuple(arch.input_shape[1:])
    elif kind == "hub":
        from zoo.pretrained.hub import signature_input_shape

        # without --image-size, the SavedModel's own signature says what it takes
        shape = (size, size, 3) if size else signature_input_shape(str(arch)[4:]) or (224, 224, 3)
    elif kind == "saved":
        from zoo.modeldir import read_meta

        shape = tuple(read_meta(arch).get("input_shape") or (224, 224, 3))
    else:
        from zoo.registry import get_spec

        shape = get_spec(arch).input_shape
        if size:
            shape = (size, size, shape[2])
    if size and (shape[0], shape[1]) != (size, size) and kind in ("model", "saved"):
        raise UsageError(f"--image-size {size} differs from the model's input {shape[0]}x{shape[1]}; "
                         f"an existing model keeps its input size. Drop --image-size.")
    if shape[0] is None or shape[1] is None:
        shape = (size or 224, size or 224, shape[2])
    return tuple(int(d) for d in shape)


def _make_run(model, data, stages, hooks, od, opts, out, strategy, precision, xla):
    from zoo.training.trainer import Run

    monitor = hooks.monitor(od)
    if data.val is None:
        monitor = (monitor[0].removeprefix("val_"), monitor[1])
    num_train = data.num_train or int(data.train.cardinality())
    return Run(model=model, train=data.train, val=data.val, num_train=num_train, stages=stages,
               loss_fn=lambda: hooks.loss(data, od), metrics_fn=lambda: hooks.metrics(data, od), monitor=monitor,
               opts=opts, out=out, strategy=strategy, precision=precision, xla=xla,
               augment=getattr(data, "augment", None))


def _restore_best(run) -> None:
    best = run.best
    path = run.out / ck.CKPT_DIR / str(best.get("file", ""))
    if best.get("file") and path.exists() and run.val is not None:
        ck.assign(run.model.weights, ck.load_arrays(path), "model")
        run.notes.append(f"kept the best epoch, {best['epoch']} ({best['metric']} {best['value']:.4f})")


def _metadata(model, meta, hooks, data, od, run, precision, strategy_name, xla, seconds) -> dict:
    from zoo.training.strategy import worker_info

    index, workers, chief = worker_info()
    extra = hooks.metadata(model, data, od)
    options = {k: v for k, v in (od.as_dict() if isinstance(od, TrainOptions) else od).items() if k not in ("workdir",)}
    meta = {**meta, **extra}
    meta.update(
        task=run.opts.task, precision=precision,
        strategy={"name": strategy_name, "replicas": run.opts.replicas, "workers": workers, "worker_index": index,
                  "chief": chief, "xla": xla},
        data={**data.summary, **meta.get("data", {})},
        training={"options": options, "stages": [vars(s) for s in run.stages],
                  "epochs_run": len(run.history), "best": run.best, "notes": run.notes, "seconds": round(seconds, 1)},
    )
    return meta


def _write_outputs(model, meta, hooks, data, run, out: Path, worker) -> None:
    from zoo.modeldir import write_model_dir
    from zoo.training.plots import draw_curves

    ck.write_history(out / "history.csv", run.history)
    write_model_dir(model, out, meta)
    draw_curves(run.history, out / "curves.png", best_epoch=run.best.get("epoch") if run.val is not None else None)
    hooks.report(model, meta, data, out)
    from zoo.ownership import remove_owned

    remove_owned(out, [ck.CKPT_DIR])  # the run is complete: model.keras supersedes it


def summary_table(meta: dict, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"zoo finetune -> {out}", show_header=False)
    training = meta.get("training", {})
    rows = [("model", str(meta.get("arch"))), ("task", str(meta.get("task"))),
            ("weights", str((meta.get("weights") or {}).get("origin") or "none (from scratch)")),
            ("precision", str(meta.get("precision"))),
            ("strategy", f"{meta['strategy']['name']} x{meta['strategy']['replicas']}"),
            ("data", ", ".join(f"{k} {v}" for k, v in meta.get("data", {}).items() if isinstance(v, (int, float, str)))),
            ("stages", ", ".join(f"{s['name']} {s['epochs']}ep lr {s['lr']:g}" for s in training.get("stages", []))),
            ("epochs run", str(training.get("epochs_run"))), ("time", f"{training.get('seconds', 0):.1f}s")]
    for key, value in (meta.get("metrics") or {}).items():
        if isinstance(value, float):
            rows.append((key, f"{value:.4f}"))
        elif isinstance(value, int):
            rows.append((key, str(value)))
    for note in training.get("notes", []):
        rows.append(("note", note))
    for k, v in rows:
        table.add_row(k, v)
    Console(stderr=False, soft_wrap=True).print(table)
