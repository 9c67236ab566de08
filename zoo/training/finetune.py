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
from zoo.training.options import TrainOptions, make_options
from zoo.training.task import Task, get_task

# Files a run writes into OUT; --overwrite removes these and nothing else.
ARTEFACTS = ("model.keras", "metadata.json", "history.csv", "curves.png", "confusion_matrix.png",
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
    arch, task_name = resolve_model_ref(model, task)
    state = check_out(out, opts)
    hooks = training_hooks(task_name)
    new_style = isinstance(hooks, Task)
    if new_style:
        opts = replace(opts, task_options=hooks.parse_options(opts.task_options))  # parsed once, checked first
    if hasattr(hooks, "check_data"):
        hooks.check_data(data, opts if new_style else opts.as_dict())  # bad DATA fails in a second, before TF loads
    from zoo.training.strategy import resolve_strategy, worker_info
    from zoo.training.precision import default_xla, policy, resolve_precision

    strategy, strategy_name = resolve_strategy(opts.strategy)  # first: multi-worker needs it before other TF ops
    precision = resolve_precision(opts.precision)
    xla = default_xla(opts.xla)
    opts = replace(opts, arch=arch if isinstance(arch, str) else None, task=task_name,
                   input_shape=resolve_input_shape(arch, opts), replicas=strategy.num_replicas_in_sync,
                   workdir=str(out / ck.CKPT_DIR))
    od = opts if new_style else opts.as_dict()
    t0 = time.time()
    import keras

    keras.utils.set_random_seed(opts.seed)  # same seed, same data split, init and shuffles
    task_data = hooks.load_data(data, od)  # raises UsageError on bad data: nothing written yet
    with ck.RunLock(out):
        state = check_out(out, opts)  # again, under the lock
        if opts.overwrite and not opts.resume:
            _remove_artefacts(out)
        from zoo.ownership import mark_owned

        mark_owned(out, "finetune")  # from here on OUT is a zoo run that --resume/--overwrite may act on
        with policy(precision):
            with strategy.scope():
                keras_model = hooks.build_model(arch, task_data, od)
            from zoo.modeldir import get_meta

            meta = get_meta(keras_model)
            stages = hooks.stages(keras_model, task_data, od) if hasattr(hooks, "stages") else _default_stages(
                keras_model, meta, opts)
            run = _make_run(keras_model, task_data, stages, hooks, od, opts, out, strategy, precision, xla)
            from zoo.training.trainer import run_stages

            if state and opts.verbose:
                print(f"resuming {out} after epoch {state['epoch']}", flush=True)
            run_stages(run, resume_state=state)
        _restore_best(run)
        meta = _metadata(keras_model, meta, hooks, task_data, od, run, precision, strategy_name, xla, time.time() - t0)
        _write_outputs(keras_model, meta, hooks, task_data, run, out, worker_info())
    if opts.verbose:
        summary_table(meta, out)
    return keras_model


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


def training_hooks(task_name: str):
    """The task's training side: TASK's methods, else those of zoo.tasks.<task>_train (optional
    hooks such as check_data, monitor, stages may live in either)."""
    import importlib



    task = get_task(task_name)
    if isinstance(task, Task):
        return task
    sources = []
    try:
        sources.append(task)
    except ModuleNotFoundError:
        pass
    try:
        sources.append(importlib.import_module(f"zoo.tasks.{task_name}_train"))
    except ModuleNotFoundError:
        pass
    if not any(hasattr(s, "load_data") for s in sources):
        raise UsageError(f"Fine-tuning {task_name} models is not available in this build of zoo.")
    return _Hooks(sources)


class _Hooks:
    def __init__(self, sources):
        self._sources = sources

    def __getattr__(self, name: str):
        for source in self._sources:
            try:
                return getattr(source, name)
            except AttributeError:
                continue
        raise AttributeError(name)


def resolve_input_shape(arch, opts: TrainOptions) -> tuple[int, int, int]:
    from zoo.modeldir import reference_kind

    size = opts.image_size
    kind = reference_kind(arch, hub=True)
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


def _default_stages(model, meta: dict, opts: TrainOptions):
    from zoo.training.freeze import head_layers
    from zoo.training.recipe import default_stages

    pretrained = bool(meta.get("weights", {}).get("origin")) or bool(meta.get("finetuned_from"))
    return default_stages(opts, pretrained=pretrained, has_head=bool(head_layers(model)))


def _make_run(model, data, stages, hooks, od, opts, out, strategy, precision, xla):
    from zoo.training.trainer import Run

    monitor = hooks.monitor(od) if hasattr(hooks, "monitor") else ("val_loss", "min")
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
    extra = hooks.metadata(model, data, od) if hasattr(hooks, "metadata") else {}
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
    draw_curves(run.history, out / "curves.png")
    if hasattr(hooks, "report"):
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
