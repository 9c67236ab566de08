"""`zoo tune` end to end on KerasTuner's distributed mode (a chief oracle, two worker processes over
gRPC), killed with SIGKILL mid-search and resumed; and the bad inputs refused before anything starts."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from helpers import write_digits, zoo_cli, zoo_popen


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_two_workers_failed_trial_kill_and_resume(tmp_path):
    data = write_digits(tmp_path / "digits", per_class=5, classes=range(3))
    out = tmp_path / "search"
    # image_size 8 is below LeNet-5's smallest input, so those trials fail when their model is built.
    # Three of the four (image_size, lr) pairs are drawn without repeats: at least one trial fails and
    # at least one completes. Several KEY=VALUES after one --space, as the README types it.
    args = ("tune", "lenet5", str(data), "--out", str(out), "--trials", "3", "--workers", "2", "--epochs", "1",
            "--space", "image_size=8,32", "lr=1e-3,2e-3")
    first = zoo_popen(*args)
    table = out / "trials.csv"
    workers, killed, deadline = [], None, time.time() + 240
    while first.poll() is None and time.time() < deadline:
        workers = sorted(set(workers) | set(_children(first.pid)))  # they start one after the other
        rows = _rows(table) if table.exists() else []
        if any(r["finished"] for r in rows) and any(not r["finished"] for r in rows):
            first.send_signal(signal.SIGKILL)  # the chief dies with a trial ended and another running
            killed = rows
            break
        time.sleep(0.2)
    output = first.communicate(timeout=60)[0]
    assert killed is not None, f"the search ended before it could be killed:\n{output}"
    assert "started on worker" in output, output  # progress while it runs
    assert len(workers) == 2
    deadline = time.time() + 60
    while any(_alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.5)
    assert not any(_alive(pid) for pid in workers), "workers outlived their chief"

    resumed = zoo_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    rows = _rows(table)
    assert [r["trial"] for r in rows] == ["0", "1", "2"]
    assert list(rows[0])[:6] == ["trial", "worker", "status", "score", "started", "finished"]
    assert {"lr", "image_size", "unfreeze", "batch_size", "error"} <= set(rows[0])
    for before in killed:
        if before["finished"]:  # ended before the kill: kept, not run again
            after = rows[int(before["trial"])]
            assert (after["status"], after["started"], after["finished"]) == \
                (before["status"], before["started"], before["finished"])
    failed = [r for r in rows if r["status"] == "failed"]
    completed = [r for r in rows if r["status"] == "completed"]
    assert failed and completed and len(failed) + len(completed) == 3
    for r in failed:
        assert r["image_size"] == "8" and r["score"] == "" and "16x16" in r["error"], r
    for r in completed:
        assert r["image_size"] == "32" and 0 <= float(r["score"]) <= 1 and r["error"] == "", r
        assert r["worker"] in ("worker0", "worker1")
        assert float(r["started"]) < float(r["finished"])
    best = max(completed, key=lambda r: float(r["score"]))
    meta = json.loads((out / "best" / "metadata.json").read_text())
    assert (out / "best" / "model.keras").exists() and not (out / "best" / "checkpoint").exists()
    assert round(meta["metrics"]["accuracy"], 6) == float(best["score"])
    assert meta["labels"] == ["0", "1", "2"]
    assert (out / "search.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"best: trial {best['trial']}" in resumed.stdout

    again = zoo_cli(*args)  # the same DIR without --resume: refused, nothing touched
    assert again.returncode == 2 and "--resume" in again.stderr
    assert _rows(table) == rows


def _refused(result, out: Path, words: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert words in lines[0], lines[0]
    assert not out.exists(), "a refused search must not start"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_digits(tmp_path_factory.mktemp("tiny") / "digits", per_class=2, classes=range(2))


@pytest.mark.parametrize("extra, words", [
    (["--space", ""], "--space is empty"),
    (["--space", "lr"], "KEY=VALUES"),
    (["--space", "lr=1e-2:1e-4"], "lo < hi"),
    (["--space", "foo=1,2"], "no option 'foo'"),
    (["--space", "lr=1e-3", "bogus"], "unexpected extra argument"),
    (["--workers", "0"], "`workers` must be an integer >= 1"),
    (["--objective", "miou"], "--objective"),
])
def test_bad_input_exits_2_before_anything_starts(tmp_path, tiny, extra, words):
    out = tmp_path / "search"
    _refused(zoo_cli("tune", "lenet5", str(tiny), "--out", str(out), *extra), out, words)


def test_port_in_use_exits_2_before_anything_starts(tmp_path, tiny):
    out = tmp_path / "search"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = zoo_cli("tune", "lenet5", str(tiny), "--out", str(out), "--workers", "2", "--port", str(port))
    _refused(result, out, f"Port {port}")


def test_half_set_kerastuner_variables_exit_2(tmp_path, tiny):
    out = tmp_path / "search"
    result = zoo_cli("tune", "lenet5", str(tiny), "--out", str(out), env={"KERASTUNER_TUNER_ID": "chief"})
    _refused(result, out, "KERASTUNER_ORACLE_IP")


def test_a_folder_zoo_did_not_write_is_refused_even_with_overwrite(tmp_path, tiny):
    out = tmp_path / "search"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    for flag in ([], ["--resume"], ["--overwrite"]):
        result = zoo_cli("tune", "lenet5", str(tiny), "--out", str(out), *flag)
        assert result.returncode == 2 and "not a zoo tune search" in result.stderr, result.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert os.environ.get("KERASTUNER_TUNER_ID") is None  # the tests above set it only in children
