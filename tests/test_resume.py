"""kill -9 in the middle of `zoo finetune`, then --resume: every epoch once in history.csv."""

from __future__ import annotations

import json
import signal
import time

import pytest

from helpers import history_epochs, write_digits, zoo_cli, zoo_popen


@pytest.mark.slow
def test_sigkill_then_resume_gives_complete_history(tmp_path):
    data = write_digits(tmp_path / "data", per_class=30, classes=range(3))
    out = tmp_path / "out"
    args = ["finetune", "lenet5", str(data), "--out", str(out), "--weights", "none", "--epochs", "8",
            "--batch-size", "2", "--augment", "none", "--early-stopping", "0", "--quiet"]
    proc = zoo_popen(*args)
    state = out / "checkpoint" / "state.json"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if state.exists() and json.loads(state.read_text())["epoch"] >= 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed: " + proc.stderr.read()[-1500:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = json.loads(state.read_text())["epoch"]
    assert 2 <= killed_at < 8
    # history.csv is rewritten just after state.json: a kill between the two renames leaves it one
    # epoch behind (zoo.training.checkpoint), never ahead, never with a gap.
    assert history_epochs(out) in (list(range(1, killed_at + 1)), list(range(1, killed_at)))
    again = zoo_cli(*args)
    assert again.returncode == 2 and "--resume" in again.stderr  # occupied without --resume
    result = zoo_cli(*args, "--resume", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert history_epochs(out) == list(range(1, 9))
    assert (out / "model.keras").exists() and (out / "curves.png").exists()
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training"]["epochs_run"] == 8
