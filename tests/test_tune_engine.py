"""zoo tune's KerasTuner side in one process: each oracle proposes valid zoo finetune options, the
trial records survive a reload (what --resume does), a dead worker's trial fails, scores are read
from a trial's model directory."""

from __future__ import annotations

import json

import pytest

from zoo.training.options import make_options
from zoo.training.tune_space import parse_space, to_option

EPOCHS = 3


def config(out, search, trials=4):
    space = parse_space({"finetune_lr": "none,1e-4", "dropout": 0.1}, task="classification", fixed={},
                        epochs=EPOCHS)
    return {"search": search, "objective": ["accuracy", "max"], "trials": trials, "epochs": EPOCHS, "space": space,
            "options": {}, "seed": 0, "out": str(out)}


def end(oracle, trial, score):
    oracle.update_trial(trial.trial_id, {"accuracy": score})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)


@pytest.mark.parametrize("search", ["random", "bayesian", "hyperband"])
def test_each_search_proposes_valid_finetune_options(tmp_path, search):
    from zoo.training.tune_engine import make_oracle

    oracle = make_oracle(config(tmp_path, search))
    seen = []
    for i in range(4):
        trial = oracle.create_trial(f"worker{i % 2}")
        assert trial.status == "RUNNING", (search, i, trial.status)
        values = trial.hyperparameters.values
        options = {k: to_option(k, v) for k, v in values.items() if not k.startswith("tuner/")}
        make_options(epochs=EPOCHS, **options)  # every proposal is a valid zoo finetune call
        assert options["dropout"] == 0.1 and options["finetune_lr"] in (None, 1e-4)
        if search == "hyperband":
            assert 1 <= values["tuner/epochs"] <= EPOCHS
        seen.append(json.dumps({**options, "epochs": values.get("tuner/epochs")}, sort_keys=True))
        end(oracle, trial, 0.5 + i / 10)
    assert oracle.create_trial("worker0").status == "STOPPED"  # --trials caps every search, Hyperband too
    # Hyperband runs a promising set again with a larger budget; nothing is repeated as it was.
    assert len(set(seen)) == len(seen)


def test_trial_records_survive_a_reload_and_a_running_trial_is_run_again(tmp_path):
    from zoo.training.tune_engine import make_oracle

    oracle = make_oracle(config(tmp_path, "random"))
    done = oracle.create_trial("worker0")
    running = oracle.create_trial("worker1")
    end(oracle, done, 0.9)
    assert oracle.create_trial("worker1").trial_id == running.trial_id  # asking again: the same trial
    before = {r["trial"]: r for r in oracle.snapshot()}
    assert before[done.trial_id]["status"] == "completed" and before[done.trial_id]["finished"]
    assert before[running.trial_id]["status"] == "running" and before[running.trial_id]["finished"] is None

    again = make_oracle(config(tmp_path, "random"))  # a new chief after a crash
    again.reload()
    after = {r["trial"]: r for r in again.snapshot()}
    assert after[done.trial_id] == before[done.trial_id]
    retried = again.create_trial("worker0")
    assert retried.trial_id == running.trial_id  # the interrupted trial first, the finished one never
    assert again.snapshot()[int(retried.trial_id)]["started"] > before[running.trial_id]["started"]


def test_a_dead_workers_trial_fails_and_it_stops_counting(tmp_path):
    from zoo.training.tune_engine import make_oracle

    oracle = make_oracle(config(tmp_path, "random"))
    trial = oracle.create_trial("worker0")
    oracle.worker_gone("worker0", "worker worker0 died (exit status -9) during the trial")
    row = oracle.snapshot()[0]
    assert row["trial"] == trial.trial_id and row["status"] == "failed" and "exit status -9" in row["message"]
    assert oracle.state() == {"ongoing": 0, "tuners": set(), "more": True}


def test_trial_metrics_from_a_model_directory(tmp_path):
    from zoo.training.tune_engine import trial_metrics

    metrics = {"accuracy": 0.75, "per_class": {}, "val_map": 0.5}
    (tmp_path / "metadata.json").write_text(json.dumps({"metrics": metrics}))
    (tmp_path / "history.csv").write_text("epoch,loss,val_loss\n1,1.0,0.9\n2,0.8,0.7\n3,0.7,nan\n")
    assert trial_metrics(tmp_path, ("accuracy", "max")) == {"accuracy": 0.75, "map": 0.5, "val_loss": 0.7}
    with pytest.raises(ValueError, match="no 'miou'"):
        trial_metrics(tmp_path, ("miou", "max"))


def test_error_line_is_the_cause_not_the_traceback():
    from zoo.training.tune_report import error_line

    message = ("Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n"
               "keras_tuner.src.errors.FailedTrialError: ValueError: bad shape\n")
    assert error_line(message) == "ValueError: bad shape"
    assert error_line("worker worker1 died (exit status 1)") == "worker worker1 died (exit status 1)"
    assert error_line(None) == "failed"
