"""zoo tune's outputs from a search's trial records: trials.csv rows, progress lines, search.png, best/."""

from __future__ import annotations

import csv

from zoo.training import tune_report as report
from zoo.training.tune_space import parse_space

T0 = 1_800_000_000.0


def config(tmp_path, search="random"):
    space = parse_space({"lr": "1e-4:1e-2:log", "unfreeze": "1,2,all", "dropout": 0.1}, task="classification",
                        fixed={}, epochs=2)
    space = {k: v for k, v in space.items() if k in ("lr", "unfreeze", "dropout")}
    return {"search": search, "objective": ["accuracy", "max"], "trials": 4, "epochs": 2, "space": space,
            "options": {}, "seed": 0, "out": str(tmp_path)}


def record(trial, status, score=None, started=0.0, finished=None, worker="worker0", message=None, **values):
    return {"trial": trial, "worker": worker, "status": status, "score": score, "started": T0 + started,
            "finished": None if finished is None else T0 + finished, "message": message,
            "values": {"lr": 1e-3, "unfreeze": "2", "dropout": 0.1, **values}}


def snapshot():
    return [record("0", "completed", 0.8, 0, 10, lr=2e-3),
            record("1", "failed", None, 0, 3, worker="worker1",
                   message="Traceback...\nkeras_tuner.src.errors.FailedTrialError: ValueError: no"),
            record("2", "completed", 0.9, 3, 12, worker="worker1", unfreeze="all"),
            record("3", "running", None, 10)]


def test_rows_columns_and_best(tmp_path):
    rows = report.trial_rows(snapshot(), config(tmp_path))
    assert list(rows[0]) == ["trial", "worker", "status", "score", "started", "finished", "lr", "unfreeze", "error"]
    assert rows[1]["error"] == "ValueError: no" and rows[1]["score"] is None
    assert rows[3]["finished"] is None and rows[3]["error"] == ""
    assert report.best_row(rows, "max")["trial"] == "2"
    assert report.best_row(rows, "min")["trial"] == "0"
    report.write_trials_csv(tmp_path / "trials.csv", rows)
    with open(tmp_path / "trials.csv", newline="") as fh:
        read = list(csv.DictReader(fh))
    assert [r["status"] for r in read] == ["completed", "failed", "completed", "running"]
    assert read[2]["unfreeze"] == "all" and float(read[0]["started"]) == T0


def test_an_error_file_names_the_cause_grpc_did_not_carry(tmp_path):
    from zoo.training.tune_engine import write_error

    cfg = config(tmp_path)
    write_error(cfg, "1", "UsageError: lenet5 needs an input of at least 16x16 pixels.")
    trials = snapshot()
    trials[1]["message"] = None  # a worker's failure reaches the chief without its message
    assert report.trial_rows(trials, cfg)[1]["error"].startswith("UsageError: lenet5 needs")


def test_progress_lines(tmp_path, capsys):
    progress = report.Progress(config(tmp_path), 2, verbose=True)
    progress.t0 = T0 - 1
    trials = snapshot()
    progress.update([dict(t, status="running", finished=None, score=None) for t in trials[:2]])
    progress.update(trials)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("trial 0 started on worker0: lr=0.002 unfreeze=2")
    ended = [line for line in lines if " after " in line]
    assert ended[0].startswith("trial 0 on worker0 after 10s: accuracy 0.8000 | 2/4 done, best 0.8000 (trial 0)")
    assert "trial 1 on worker1 after 3s: FAILED: ValueError: no | 1/4 done" in ended[1]
    assert ended[2].startswith("trial 2 on worker1 after 9s: accuracy 0.9000 | 3/4 done, best 0.9000 (trial 2), ETA")
    progress.update(trials)  # nothing new, nothing said
    assert capsys.readouterr().out == ""


def test_search_png_and_best_copy(tmp_path):
    cfg = config(tmp_path)
    rows = report.trial_rows(snapshot(), cfg)
    assert report.draw_search(tmp_path / "search.png", rows, cfg).read_bytes()[:4] == b"\x89PNG"
    trial = tmp_path / "trials" / "2"
    (trial / "checkpoint").mkdir(parents=True)
    for name in ("model.keras", "metadata.json", "history.csv", "checkpoint/state.json"):
        (trial / name).write_text(name)
    best = report.copy_best(tmp_path, trial)
    assert sorted(p.name for p in best.iterdir()) == ["history.csv", "metadata.json", "model.keras"]
    (trial / "metadata.json").write_text("newer")
    report.copy_best(tmp_path, trial)  # replaced whole
    assert (best / "metadata.json").read_text() == "newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "search.png", "trials"]
    assert report.copy_best(tmp_path, tmp_path / "trials" / "9") is None  # no model there (another machine's)
