"""zoo.tune: hyper-parameter search over zoo finetune's options, trials in parallel on KerasTuner's
distributed mode.

This process is the chief: it checks everything first (space, options, objective, data, port,
the output folder: a mistake fails in a second, before anything starts), serves KerasTuner's
oracle over gRPC, starts W worker processes on this machine (zoo.training.tune_engine; the CPU
cores split between them, one GPU each when there are GPUs), prints progress as trials end, and
writes DIR/trials.csv, DIR/best/ and DIR/search.png. A worker that dies fails its trial, is
restarted, and the search goes on. Across machines the same command runs everywhere with
KerasTuner's variables: KERASTUNER_TUNER_ID=chief on the machine that serves the oracle (at
KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT), any other id on machines that only run workers.

DIR:
    tune.json      the search's settings; also zoo's mark that DIR holds a zoo tune search
    keras_tuner/   KerasTuner's state (oracle.json, trial_<id>/trial.json): what --resume reloads
    trials/<id>/   each trial's zoo model directory (a killed trial resumes from its checkpoint)
    workers/       one log per worker (the trials' epochs, a failed trial's traceback)
    trials.csv, best/, search.png
"""

from __future__ import annotations

import dataclasses

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import UsageError, ZooError

MARK = "tune.json"
SEARCHES = ("random", "bayesian", "hyperband")
# What a search writes into DIR; --overwrite removes these and nothing else.
ARTEFACTS = (MARK, "keras_tuner", "trials", "workers", "trials.csv", "best", "search.png", ".best.tmp", ".best.old")
# Settings a resumed search must share with the one it continues (--trials and --workers may change).
SAME_ON_RESUME = ("model", "data", "search", "objective", "epochs", "space", "options", "seed")
RESTARTS = 3  # a worker that dies this many times in a row without finishing a trial is not restarted


def tune(model, data: str | os.PathLike, *, out: str | os.PathLike, trials: int = 10, workers: int = 1,
         epochs: int = 10, space: dict[str, Any] | None = None, search: str = "random",
         objective: str | None = None, port: int | None = None, resume: bool = False, overwrite: bool = False,
         verbose: int = 2, **options: Any) -> dict[str, Any]:
    """Search zoo finetune's options for `model` on `data`; every trial is a model directory.

    Args:
        model: a registry name, a model directory / .keras file or "hub:PATH" (what zoo.finetune takes).
        data: the task's data folder.
        out: the search folder DIR (trials/, trials.csv, best/, search.png). Refused if it holds
            anything but a zoo tune search; one is continued with `resume=True` (after a crash or
            Ctrl-C: finished trials are kept, interrupted ones resume from their checkpoint) or
            replaced with `overwrite=True`.
        trials: how many trials (for Hyperband, a cap on its brackets).
        workers: worker processes on this machine, trials running in parallel.
        epochs: epochs per trial (Hyperband: the largest budget).
        space: option -> values, overriding the task's default space key by key: "1e-4:1e-2:log"
            (a range), "1,2,all" or a list (a choice), a single value (fixed). See zoo.training.tune_space.
        search: "random", "bayesian" or "hyperband" (KerasTuner's oracles).
        objective: the metric to maximise (the task's default: accuracy, map, miou, bleu4), or val_loss.
        port: the oracle's gRPC port on 127.0.0.1 (default: a free one).
        verbose: 2 prints progress lines and the summary table, 1 only the table, 0 nothing.
        **options: zoo finetune options fixed for every trial (weights, val, image_size, task_options...).
    Returns:
        {"out", "objective", "direction", "best": {"trial", "score", "options", "model_dir"} | None,
         "trials": [trials.csv rows], "seconds", "workers"}.
    """
    role = _role(port)
    config = prepare(model, data, out=out, trials=trials, workers=workers, epochs=epochs, space=space,
                     search=search, objective=objective, options=options)
    if role.kind == "worker":
        return _run_workers_only(config, role, workers, verbose)
    out_dir = Path(config["out"])
    _claim(out_dir, config, resume=resume, overwrite=overwrite, remove=False)  # refuse before making the lock
    with _locked(out_dir):
        resuming = _claim(out_dir, config, resume=resume, overwrite=overwrite)  # again, under the lock
        out_dir.mkdir(parents=True, exist_ok=True)
        from zoo.files import write_text

        write_text(out_dir / MARK, json.dumps(config, indent=1) + "\n")
        from zoo.ownership import mark_owned

        mark_owned(out_dir, "tune")  # the mark every zoo output folder carries
        return _search(config, role, workers, resuming=resuming, verbose=verbose)


# --- checks: all before anything starts ---


def prepare(model, data, *, out, trials, workers, epochs, space, search, objective, options) -> dict[str, Any]:
    """The search's settings as JSON-able data, every input checked (no TensorFlow is imported)."""
    from zoo.training.finetune import resolve_model_ref
    from zoo.training.options import make_options
    from zoo.training.task import get_task
    from zoo.training.tune_space import objective_for, parse_space

    for name, value in (("trials", trials), ("workers", workers), ("epochs", epochs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"`{name}` must be an integer >= 1. Received: {name}={value!r}.")
    if search not in SEARCHES:
        raise UsageError(f"`search` must be one of {', '.join(SEARCHES)}. Received: search={search!r}.")
    if search == "bayesian":
        import importlib.util

        if importlib.util.find_spec("sklearn") is None or importlib.util.find_spec("scipy") is None:
            raise UsageError("--search bayesian needs scikit-learn and scipy: pip install 'keras-tuner[bayesian]'.")
    if not isinstance(model, (str, os.PathLike)):
        raise UsageError("zoo.tune runs each trial in a worker process, so `model` must be a registry name, a "
                         "model directory or a .keras file, not an in-memory model. Save it first (model.save).")
    arch, task = resolve_model_ref(model, None)
    opts = make_options(epochs=epochs, **options)  # unknown or invalid fixed options fail here
    hooks = get_task(task)
    # An unknown --opt key fails here, not in every trial.
    opts = dataclasses.replace(opts, task_options=hooks.parse_options(opts.task_options))
    parsed = parse_space(space, task=task, fixed=options, epochs=epochs)
    if not any(s["kind"] != "fixed" for s in parsed.values()):
        raise UsageError("Nothing to search: every option in the space has one value. Give a range or a choice.")
    name, direction = objective_for(task, objective)
    data_path = Path(data)
    if not data_path.exists():
        raise UsageError(f"DATA {str(data)!r} does not exist.")
    hooks.check_data(data, opts)
    model_ref = str(Path(arch).resolve()) if isinstance(arch, str) and Path(arch).exists() else arch
    return {"zoo": "tune", "model": model_ref, "data": str(data_path.resolve()), "task": task,
            "search": search, "objective": [name, direction], "trials": trials, "epochs": epochs,
            "space": parsed, "options": options, "seed": int(opts.seed), "out": str(Path(out).resolve())}


@dataclass
class _Role:
    kind: str  # "local" (chief and workers here), "chief" (serves machines too) or "worker" (workers only)
    ip: str
    port: int | None
    tuner_id: str = ""


def _role(port: int | None) -> _Role:
    """Where the oracle is, from KerasTuner's variables; a port someone holds fails here (exit 2)."""
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID")
    env_ip, env_port = os.environ.get("KERASTUNER_ORACLE_IP"), os.environ.get("KERASTUNER_ORACLE_PORT")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
        raise UsageError(f"`port` must be between 1 and 65535. Received: port={port!r}.")
    if not tuner_id:
        if env_ip or env_port:
            raise UsageError("KERASTUNER_ORACLE_IP / KERASTUNER_ORACLE_PORT are set but KERASTUNER_TUNER_ID is not: "
                             "set it to 'chief' on the machine that serves the search, another id elsewhere.")
        if port is not None:
            _check_port("127.0.0.1", port)
        return _Role("local", "127.0.0.1", port)
    if not env_ip or not env_port or not env_port.isdigit() or not 0 < int(env_port) < 65536:
        raise UsageError("KERASTUNER_TUNER_ID is set, so KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT (1-65535) "
                         f"must be too. Received: {env_ip!r}, {env_port!r}.")
    if port is not None and port != int(env_port):
        raise UsageError(f"--port {port} differs from KERASTUNER_ORACLE_PORT={env_port}; give one of them.")
    if "chief" in tuner_id:  # KerasTuner's rule for which tuner holds the oracle
        _check_port(env_ip, int(env_port))
        return _Role("chief", env_ip, int(env_port), tuner_id)
    return _Role("worker", env_ip, int(env_port), tuner_id)


def _check_port(ip: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((ip, port))
        except OSError as exc:
            raise UsageError(f"Port {port} on {ip} is not free ({exc.strerror or exc}); another search or program "
                             f"holds it. Choose another --port (or KERASTUNER_ORACLE_PORT).") from None


def _free_port(ip: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((ip, 0))
        return sock.getsockname()[1]


def _claim(out: Path, config: dict[str, Any], *, resume: bool, overwrite: bool, remove: bool = True) -> bool:
    """True to continue the search in `out`, False to start one (with `overwrite`, after removing the old
    search's files when `remove`); refuses a folder zoo did not write."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {str(out)!r} is a file. Give a folder for the search.")
    from zoo.training.checkpoint import LOCK

    present = [p.name for p in out.iterdir() if p.name != LOCK] if out.exists() else []
    if not present:
        return False
    mark = out / MARK
    if not mark.exists():
        raise UsageError(f"--out {str(out)!r} holds {len(present)} entries that are not a zoo tune search "
                         f"({', '.join(sorted(present)[:3])}...). Choose another --out; zoo never deletes files it "
                         f"did not write.")
    try:
        stored = json.loads(mark.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{mark} is unreadable ({exc}). Choose another --out.") from None
    if resume:
        for key in SAME_ON_RESUME:
            if stored.get(key) != config[key]:
                raise UsageError(f"--out {str(out)!r} holds a search with another {key} ({_short(stored.get(key))}, "
                                 f"now {_short(config[key])}). Resume with the same settings, or pass --overwrite.")
        return True
    if overwrite:
        if remove:
            from zoo.ownership import remove_owned

            remove_owned(out, ARTEFACTS)  # zoo's own names only, never through a link
        return False
    raise UsageError(f"--out {str(out)!r} already holds a zoo tune search. Pass --resume to continue it, "
                     f"--overwrite to replace it, or choose another --out.")


def _short(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) < 80 else text[:77] + "..."


@contextmanager
def _locked(out: Path):
    """zoo's run lock on DIR (the one zoo finetune takes): a second search into the folder is refused."""
    from zoo.training.checkpoint import RunLock

    lock = RunLock(out)
    try:
        lock.__enter__()
    except UsageError:
        raise UsageError(f"Another zoo run is writing to {out}. Wait for it or choose another --out.") from None
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


# --- workers ---


@dataclass
class _Worker:
    tuner_id: str
    slot: int
    proc: subprocess.Popen | None = None
    deaths: int = 0  # in a row, without a trial finished in between
    trials_done: int = 0
    finished: bool = False
    error: str = ""
    log: Path | None = None


def _worker_env(role: _Role, tuner_id: str, slot: int, count: int, gpus: list[str]) -> dict[str, str]:
    import zoo

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // count)
    ip = "127.0.0.1" if role.ip in ("0.0.0.0", "::", "") else role.ip
    root = str(Path(zoo.__file__).resolve().parent.parent)  # zoo importable in the worker however it was here
    env = {**os.environ, "KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": ip,
           "KERASTUNER_ORACLE_PORT": str(role.port), "ZOO_TUNE_PARENT": str(os.getpid()),
           "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": str(1 if threads <= 2 else 2),
           "OMP_NUM_THREADS": str(threads),
           "PYTHONPATH": os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
        if count > len(gpus):  # workers share a GPU: each takes memory as it needs it
            env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    return env


def _gpus() -> list[str]:
    """GPU ids to hand out, one per worker: CUDA_VISIBLE_DEVICES when set, else what nvidia-smi lists."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and not g.strip().startswith("-")]
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(l for l in listing.splitlines() if l.startswith("GPU "))]


def _start(worker: _Worker, config: dict[str, Any], role: _Role, count: int, gpus: list[str]) -> None:
    logs = Path(config["out"]) / "workers"
    logs.mkdir(parents=True, exist_ok=True)
    worker.log = logs / f"{worker.tuner_id}.log"
    # A log is a stream appended while the worker runs, so it is the one file not written atomically.
    with open(worker.log, "ab") as log:
        # Its own session: Ctrl-C reaches the chief alone, which then stops the workers in order.
        worker.proc = subprocess.Popen([sys.executable, "-m", "zoo.training.tune_engine"], stdin=subprocess.PIPE,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                       env=_worker_env(role, worker.tuner_id, worker.slot, count, gpus))
    worker.proc.stdin.write(json.dumps(config).encode("utf-8"))
    worker.proc.stdin.close()


def _stop(workers: list[_Worker]) -> None:
    live = [w for w in workers if w.proc is not None and w.proc.poll() is None]
    for w in live:
        w.proc.terminate()
    deadline = time.time() + 15
    for w in live:
        try:
            w.proc.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait()


def _last_line(path: Path | None) -> str:
    try:
        lines = [l.strip() for l in path.read_text(encoding="utf-8", errors="replace").splitlines() if l.strip()]
    except (OSError, AttributeError):
        return ""
    return lines[-1][:300] if lines else ""


def _ids(role: _Role, count: int) -> list[str]:
    if role.kind == "worker":
        return [role.tuner_id] if count == 1 else [f"{role.tuner_id}-{i}" for i in range(count)]
    return [f"worker{i}" for i in range(count)]


# --- the search ---


def _search(config: dict[str, Any], role: _Role, count: int, *, resuming: bool, verbose: int) -> dict[str, Any]:
    from zoo.training import tune_report as report

    out = Path(config["out"])
    t0 = time.time()
    port = role.port or _free_port(role.ip)
    role = _Role(role.kind, role.ip, port, role.tuner_id)
    gpus = _gpus()
    workers = [_Worker(tuner_id, slot) for slot, tuner_id in enumerate(_ids(role, count))]
    if verbose >= 2:
        where = f"{len(gpus)} GPU{'s' * (len(gpus) != 1)}" if gpus else "CPU"
        goal = ("maximising " if config["objective"][1] == "max" else "minimising ") + config["objective"][0]
        epochs = f"{config['epochs']} epoch{'s' * (config['epochs'] > 1)}"
        print(f"zoo tune: {config['search']} search, {config['trials']} trials of {epochs}, "
              f"{count} worker{'s' * (count > 1)} ({where}), oracle at {role.ip}:{port}, {goal}", flush=True)
    # Workers start first: importing TensorFlow takes them a while, and they wait for the oracle.
    for w in workers:
        _start(w, config, role, count, gpus)
    server = None
    try:
        from zoo.training.tune_engine import make_oracle, serve

        oracle = make_oracle(config)
        if resuming and (out / "keras_tuner" / "oracle.json").exists():
            try:
                oracle.reload()
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise UsageError(f"The search state in {out / 'keras_tuner'} cannot be read ({exc}); resume is "
                                 f"impossible. Pass --overwrite to start again.") from None
        oracle.save()
        server, _ = serve(oracle, role.ip, port)
        progress = report.Progress(config, count, verbose=verbose >= 2,
                                   on_end=lambda rows: report.write_trials_csv(out / "trials.csv", rows))
        progress.prime(oracle.snapshot())
        _supervise(oracle, workers, config, role, count, gpus, progress)
    except BaseException as exc:
        _stop(workers)
        if server is not None:
            server.stop(0)
            _write_rows(out, oracle, config)
        if isinstance(exc, KeyboardInterrupt) and verbose:
            print("interrupted: finished trials are kept; run the same command with --resume to continue.",
                  file=sys.stderr, flush=True)
        raise
    server.stop(0)
    return _finish(oracle, config, count, time.time() - t0, verbose=verbose)


def _supervise(oracle, workers: list[_Worker], config, role: _Role, count: int, gpus, progress) -> None:
    """Until every worker is done: progress, and a dead worker's trial failed and the worker restarted."""
    local = {w.tuner_id for w in workers}
    while True:
        time.sleep(0.5)
        snapshot = oracle.snapshot()
        progress.update(snapshot)
        for w in workers:
            if w.finished or w.proc.poll() is None:
                continue
            code = w.proc.returncode
            oracle.worker_gone(w.tuner_id, f"worker {w.tuner_id} died (exit status {code}) during the trial; "
                                           f"see workers/{w.log.name}: {_last_line(w.log)}")
            done_now = sum(1 for t in snapshot if t["worker"] == w.tuner_id and t["status"] == "completed")
            w.deaths = 0 if done_now > w.trials_done else w.deaths
            w.trials_done = done_now
            if code == 0:
                w.finished = True
                continue
            w.deaths += 1
            if w.deaths < RESTARTS and oracle.state()["more"]:
                if progress.verbose:
                    print(f"worker {w.tuner_id} died (exit status {code}): {_last_line(w.log)}; restarting it",
                          flush=True)
                _start(w, config, role, count, gpus)
            else:
                w.finished, w.error = True, f"worker {w.tuner_id} died (exit status {code}): {_last_line(w.log)}"
        state = oracle.state()
        # Remote workers (other machines) still asking must get their "stop" before the oracle goes.
        if all(w.finished for w in workers) and not state["ongoing"] and not state["tuners"] - local:
            break
    progress.update(oracle.snapshot())
    if not any(t["finished"] for t in oracle.snapshot()) and all(w.error for w in workers):
        raise ZooError(f"No trial ran: {workers[0].error}")


def _write_rows(out: Path, oracle, config) -> list[dict]:
    from zoo.training import tune_report as report

    rows = report.trial_rows(oracle.snapshot(), config)
    if rows:
        report.write_trials_csv(out / "trials.csv", rows)
    return rows


def _finish(oracle, config: dict[str, Any], count: int, seconds: float, *, verbose: int) -> dict[str, Any]:
    from zoo.training import tune_report as report
    from zoo.training.tune_engine import trial_dir

    out = Path(config["out"])
    rows = _write_rows(out, oracle, config)
    name, direction = config["objective"]
    best = report.best_row(rows, direction)
    best_dir = report.copy_best(out, trial_dir(config, best["trial"])) if best else None
    report.draw_search(out / "search.png", rows, config)
    if verbose:
        report.summary_table(rows, config, best=best, seconds=seconds, workers=count)
        if best_dir is not None:
            print(f"best: trial {best['trial']}, {name} {best['score']:.4f} -> {best_dir} "
                  f"(zoo predict IMAGE --model {best_dir})", flush=True)
        elif best is not None:
            print(f"best: trial {best['trial']}, {name} {best['score']:.4f}; its model directory is on the machine "
                  f"of worker {best['worker']}, under trials/{best['trial']}/", flush=True)
    searched = [k for k, s in config["space"].items() if s["kind"] != "fixed"]
    result = {"out": str(out), "objective": name, "direction": direction, "trials": rows,
              "seconds": round(seconds, 1), "workers": count,
              "best": None if best is None else {"trial": best["trial"], "score": best["score"],
                                                 "options": {k: best[k] for k in searched},
                                                 "model_dir": str(best_dir) if best_dir else None}}
    if best is None:
        first = next((r["error"] for r in rows if r["error"]), "no trial ran")
        raise ZooError(f"No trial of the search in {out} completed (first error: {first}). See {out}/workers/.")
    return result


def _run_workers_only(config: dict[str, Any], role: _Role, count: int, verbose: int) -> dict[str, Any]:
    """A machine that only runs workers for a chief elsewhere: start them, wait, report."""
    out = Path(config["out"])
    if out.exists() and any(p.name not in (MARK, "trials", "workers") for p in out.iterdir()) \
            and not (out / MARK).exists():
        raise UsageError(f"--out {str(out)!r} holds files that are not a zoo tune search. Choose another --out.")
    workers = [_Worker(tuner_id, slot) for slot, tuner_id in enumerate(_ids(role, count))]
    gpus = _gpus()
    if verbose:
        print(f"zoo tune: {count} worker{'s' * (count > 1)} asking the chief at {role.ip}:{role.port} for trials",
              flush=True)
    t0 = time.time()
    for w in workers:
        _start(w, config, role, count, gpus)
    try:
        codes = [w.proc.wait() for w in workers]
    except BaseException:
        _stop(workers)
        raise
    failed = [f"{w.tuner_id} (exit status {c}): {_last_line(w.log)}" for w, c in zip(workers, codes) if c]
    if failed:
        raise ZooError(f"Worker {failed[0]}")
    if verbose:
        print(f"workers done in {time.time() - t0:.0f}s; trials.csv and best/ are written by the chief", flush=True)
    return {"out": str(out), "workers": count, "seconds": round(time.time() - t0, 1), "role": "worker"}
