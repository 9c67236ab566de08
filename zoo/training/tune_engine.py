"""KerasTuner under `zoo tune`: the oracle, the chief's gRPC server, and the worker whose trials are
zoo finetune runs.

KerasTuner's distributed mode: one chief holds the oracle (random search, Bayesian optimisation
or Hyperband) and serves it over gRPC; each worker is a KerasTuner `Tuner` that asks it for a
trial, runs it, reports the objective and asks again until the oracle says stop. A worker is
configured by KerasTuner's variables KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and
KERASTUNER_ORACLE_PORT, and started here as `python -m zoo.training.tune_engine` with the search's
settings (tune.json's content) as JSON on stdin. Each trial fine-tunes into DIR/trials/<trial_id>/
with zoo.finetune, so KerasTuner never builds or fits a model itself.
"""

from __future__ import annotations

import gc
import json
import math
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

PROJECT = "keras_tuner"  # KerasTuner's own state under DIR: oracle.json, trial_<id>/trial.json
TRIALS = "trials"  # DIR/trials/<trial_id>/: each trial's zoo model directory
ERROR = "error.txt"  # in a failed trial's folder: the one-line cause


# --- the oracle (chief side) ---


def make_oracle(config: dict[str, Any]):
    """KerasTuner's oracle for `config["search"]`, over the search space, recording when and where each
    trial ran. Failed trials are never retried and never stop the search."""
    import keras_tuner as kt

    name, direction = config["objective"]
    base = {"random": kt.oracles.RandomSearchOracle, "bayesian": kt.oracles.BayesianOptimizationOracle,
            "hyperband": kt.oracles.HyperbandOracle}[config["search"]]
    cls = type(f"Zoo{base.__name__}", (_Timing, base), {})
    trials = int(config["trials"])
    kwargs: dict[str, Any] = dict(objective=kt.Objective(name, direction), hyperparameters=hyperparameters(config),
                                  # KerasTuner reads seed 0 as "no seed": shift so --seed 0 is reproducible too
                                  seed=int(config["seed"]) + 1, max_retries_per_trial=0,
                                  max_consecutive_failed_trials=trials + 1)
    if config["search"] == "hyperband":
        oracle = cls(max_epochs=int(config["epochs"]), factor=3, hyperband_iterations=None, **kwargs)
        oracle.max_trials = trials  # Hyperband sizes its own brackets; --trials caps the total
    elif config["search"] == "bayesian":
        searched = sum(1 for s in config["space"].values() if s["kind"] != "fixed")
        # KerasTuner's default (3 random trials per option) would leave a small budget all random.
        initial = min(3 * max(searched, 1), max(2, trials // 2))
        oracle = cls(max_trials=trials, num_initial_points=initial, **kwargs)
    else:
        oracle = cls(max_trials=trials, **kwargs)
    oracle.verbose = 0  # zoo prints its own progress
    oracle._set_project_dir(config["out"], PROJECT)
    return oracle


def hyperparameters(config: dict[str, Any]):
    """The space as KerasTuner HyperParameters (a choice mixing None and numbers travels as strings)."""
    import keras_tuner as kt

    hp = kt.HyperParameters()
    for name, spec in config["space"].items():
        kind = spec["kind"]
        if kind in ("float", "int"):
            make = hp.Float if kind == "float" else hp.Int
            make(name, spec["min"], spec["max"], sampling="log" if spec["log"] else "linear")
        elif kind == "choice":
            hp.Choice(name, _one_type(spec["values"]))
        else:
            hp.Fixed(name, _one_type([spec["value"]])[0])
    return hp


def _one_type(values: list) -> list:
    kinds = {type(v) for v in values}
    if kinds in ({int}, {float}, {str}, {bool}):
        return list(values)
    if kinds == {int, float}:
        return [float(v) for v in values]
    return ["none" if v is None else str(v) for v in values]


class _Timing:
    """Oracle mixin: the worker, start and end (unix seconds) of every trial, saved in oracle.json
    with KerasTuner's own state so that a resumed search keeps them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.zoo_trials: dict[str, dict] = {}

    def create_trial(self, tuner_id):
        from keras_tuner.src.engine.oracle import synchronized

        return synchronized(_Timing._create)(self, tuner_id)

    def _create(self, tuner_id):
        repeat = tuner_id in self.ongoing_trials  # a worker asking again gets its running trial back
        trial = super().create_trial(tuner_id)
        if trial.status == "RUNNING" and not repeat:
            self.zoo_trials[trial.trial_id] = {"worker": tuner_id, "started": time.time(), "finished": None}
            self.save()
        return trial

    def end_trial(self, trial):
        from keras_tuner.src.engine.oracle import synchronized

        return synchronized(_Timing._end)(self, trial)

    def _end(self, trial):
        info = self.zoo_trials.setdefault(trial.trial_id, {"worker": None, "started": None})
        info["finished"] = time.time()
        super().end_trial(trial)
        # KerasTuner saves before it drops the trial from the running ones: save again, or a search
        # killed now would run this finished trial a second time when resumed.
        self.save()

    def fail_trial(self, trial_id: str, message: str) -> None:
        """End a running trial as failed from the chief (its worker died)."""
        from keras_tuner.src.engine.trial import Trial

        current = self.trials[trial_id]
        self.end_trial(Trial(current.hyperparameters, trial_id=trial_id, status="FAILED", message=message))

    def worker_gone(self, tuner_id: str, message: str) -> None:
        """A worker process ended: its running trial (if any) fails, and it no longer counts as asking."""
        from keras_tuner.src.engine.oracle import synchronized

        def gone(oracle):
            ongoing = oracle.ongoing_trials.get(tuner_id)
            if ongoing is not None:
                oracle.fail_trial(ongoing.trial_id, message)
            oracle.tuner_ids.discard(tuner_id)

        synchronized(gone)(self)

    def state(self) -> dict:
        """{"ongoing": trials running, "tuners": workers still asking, "more": whether trials remain}."""
        from keras_tuner.src.engine.oracle import synchronized

        def read(oracle):
            left = oracle.remaining_trials()
            return {"ongoing": len(oracle.ongoing_trials), "tuners": set(oracle.tuner_ids),
                    "more": bool(oracle._retry_queue) or left is None or left > 0}

        return synchronized(read)(self)

    def snapshot(self) -> list[dict]:
        from keras_tuner.src.engine.oracle import synchronized

        return synchronized(_Timing._snapshot)(self)

    def _snapshot(self) -> list[dict]:
        rows = []
        for trial_id, trial in self.trials.items():
            info = self.zoo_trials.get(trial_id, {})
            rows.append({"trial": trial_id, "worker": info.get("worker"), "status": trial.status.lower(),
                         "score": trial.score, "started": info.get("started"), "finished": info.get("finished"),
                         "values": dict(trial.hyperparameters.values), "message": trial.message})
        return sorted(rows, key=lambda r: int(r["trial"]))

    def save(self):
        # oracle.json replaced atomically: a search killed at any instant can still be resumed.
        from zoo.files import write_text

        write_text(self._get_oracle_fname(), json.dumps(self.get_state(), default=str))

    def get_state(self):
        return {**super().get_state(), "zoo_trials": self.zoo_trials}

    def set_state(self, state):
        super().set_state(state)
        self.zoo_trials = dict(state.get("zoo_trials") or {})


def serve(oracle, ip: str, port: int):
    """Serve `oracle` to the workers over gRPC; returns (server, port bound).

    This is KerasTuner's own servicer (what `tuner.search()` starts on a chief), hosted by zoo so
    that the chief can also watch its workers and stop as soon as they are done."""
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    # No SO_REUSEPORT: a second search on the same port must fail to bind, not share it.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)])
    protos.get_service_grpc().add_OracleServicer_to_server(OracleServicer(oracle), server)
    try:
        bound = server.add_insecure_port(f"{ip}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        from zoo.errors import UsageError

        raise UsageError(f"Cannot serve the search on {ip}:{port} (the port is in use or the address is not this "
                         f"machine's). Choose another --port.")
    server.start()
    return server, bound


# --- the worker ---


def _tuner_class():
    import keras_tuner as kt

    class ZooTuner(kt.Tuner):
        """A KerasTuner worker whose trials are zoo finetune runs (it builds and fits nothing itself)."""

        def __init__(self, oracle, config: dict[str, Any]):
            self.config = config
            self._asked = 0
            super().__init__(oracle, directory=config["out"], project_name=PROJECT, overwrite=False)

        def pre_create_trial(self):
            # Hyperband answers IDLE while a round's trials finish: ask again a second later, not in a loop.
            self._asked += 1
            if self._asked > 1:
                time.sleep(1.0)

        def on_trial_begin(self, trial):
            self._asked = 0
            print(f"trial {trial.trial_id}: {trial.hyperparameters.values}", flush=True)

        def run_trial(self, trial, *args, **kwargs):
            try:
                return run_one(self.config, trial.trial_id, dict(trial.hyperparameters.values))
            except Exception as exc:
                traceback.print_exc()  # the whole story goes to the worker's log, one line to trials.csv
                write_error(self.config, trial.trial_id, one_line(exc))
                raise kt.errors.FailedTrialError(one_line(exc)) from None
            finally:
                import keras

                keras.backend.clear_session()
                gc.collect()

        def save_model(self, trial_id, model, step=0):
            pass  # zoo.finetune wrote the trial's model directory

        def load_model(self, trial):
            from zoo.modeldir import load_model

            return load_model(trial_dir(self.config, trial.trial_id))

    return ZooTuner


def trial_dir(config: dict[str, Any], trial_id: str) -> Path:
    return Path(config["out"]) / TRIALS / str(trial_id)


def run_one(config: dict[str, Any], trial_id: str, values: dict[str, Any]) -> dict[str, float]:
    """Fine-tune one trial into DIR/trials/<id>/ and return its metrics, the objective among them.

    A trial that ran before (the search was interrupted) continues from its checkpoint, or is
    only scored when its model directory is complete."""
    from zoo.training import checkpoint as ck
    from zoo.training.finetune import finetune
    from zoo.training.tune_space import to_option

    out = trial_dir(config, trial_id)
    options = {k: to_option(k, v) for k, v in values.items() if not k.startswith("tuner/")}
    epochs = int(values.get("tuner/epochs") or config["epochs"])  # Hyperband gives each trial its budget
    finished = (out / "model.keras").exists() and (out / "metadata.json").exists() and ck.read_state(out) is None
    if not finished:
        resume = out.exists() and ck.read_state(out) is not None
        overwrite = out.exists() and any(out.iterdir()) and not resume
        out.parent.mkdir(parents=True, exist_ok=True)
        finetune(config["model"], config["data"], out=out, epochs=epochs, verbose=2, resume=resume,
                 overwrite=overwrite, **{**config["options"], **options})
    return trial_metrics(out, tuple(config["objective"]))


def trial_metrics(out: Path, objective: tuple[str, str]) -> dict[str, float]:
    """The numeric metrics of a trial's model directory (metadata.json), plus the best epoch's
    val_loss (history.csv); the objective must be among them."""
    import csv

    name, direction = objective
    meta = json.loads((out / "metadata.json").read_text(encoding="utf-8"))
    metrics = {}
    for key, value in (meta.get("metrics") or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            metrics[key.removeprefix("val_")] = float(value)
    history = out / "history.csv"
    if history.exists():
        with open(history, newline="", encoding="utf-8") as fh:
            losses = [float(r["val_loss"]) for r in csv.DictReader(fh) if r.get("val_loss") not in (None, "")]
        losses = [v for v in losses if math.isfinite(v)]
        if losses:
            metrics["val_loss"] = min(losses)
    if name not in metrics:
        raise ValueError(f"the trial reported no {name!r} (it has {', '.join(sorted(metrics)) or 'no metrics'}); "
                         f"is there validation data?")
    return metrics


def write_error(config: dict[str, Any], trial_id: str, line: str) -> None:
    """DIR/trials/<id>/error.txt: KerasTuner's gRPC messages carry a trial's status but not its error
    message, so the chief reads the cause from here."""
    from zoo.files import write_text

    folder = trial_dir(config, trial_id)
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / ERROR, line + "\n")


def read_error(config: dict[str, Any], trial_id: str) -> str:
    try:
        return (trial_dir(config, trial_id) / ERROR).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no message"
    return f"{type(exc).__name__}: {text}"[:500]


def _watch_parent(parent: int) -> None:
    """Exit when the process that started this worker is gone (killed, crashed): the search is
    over, and a resumed one continues this trial from its checkpoint."""

    def watch():
        while True:
            if os.getppid() != parent:
                os._exit(3)
            time.sleep(1.0)

    threading.Thread(target=watch, name="zoo-tune-parent", daemon=True).start()


def main() -> None:
    config = json.loads(sys.stdin.read())
    parent = os.environ.get("ZOO_TUNE_PARENT")
    if parent:
        _watch_parent(int(parent))
    import tensorflow as tf

    # The parent split this machine's cores between its workers (the variables are also read by TF).
    for var, setter in (("TF_NUM_INTRAOP_THREADS", tf.config.threading.set_intra_op_parallelism_threads),
                        ("TF_NUM_INTEROP_THREADS", tf.config.threading.set_inter_op_parallelism_threads)):
        if os.environ.get(var, "").isdigit():
            setter(int(os.environ[var]))
    from keras_tuner.src import config as kt_config

    kt_config.DEBUG = False  # run_trial logs the trial's own traceback; KerasTuner's would repeat it
    tuner = _tuner_class()(make_oracle(config), config)
    print(f"worker {tuner.tuner_id} asking {os.environ.get('KERASTUNER_ORACLE_IP')}:"
          f"{os.environ.get('KERASTUNER_ORACLE_PORT')} for trials", flush=True)
    tuner.search()


if __name__ == "__main__":
    main()
