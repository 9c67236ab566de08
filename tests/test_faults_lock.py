"""Two `zoo finetune` runs into the same --out: the second is refused by the run lock, even with
--overwrite (which passes the "OUT is occupied" check), and the first run's files stay.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from _finetune_helpers import history_epochs, write_digits, zoo_cli, zoo_popen


@pytest.mark.slow
def test_second_finetune_into_a_running_out_is_refused_and_deletes_nothing(tmp_path):
    data = write_digits(tmp_path / "data", per_class=30, classes=range(3))
    out = tmp_path / "out"
    args = ["finetune", "lenet5", str(data), "--out", str(out), "--weights", "none", "--epochs", "60",
            "--batch-size", "2", "--augment", "none", "--early-stopping", "0", "--quiet"]
    first = zoo_popen(*args)
    state = out / "checkpoint" / "state.json"
    try:
        deadline = time.time() + 240
        while time.time() < deadline and first.poll() is None and not state.exists():
            time.sleep(0.2)
        assert first.poll() is None and state.exists(), "first run did not start: " + first.stderr.read()[-1500:]
        # --overwrite passes the "OUT is occupied" check and would delete the run's files: the lock stops it
        # (--resume takes the same path to the lock; one CLI start-up is enough for CI)
        second = zoo_cli(*args, "--overwrite")
        assert first.poll() is None, "the first run ended while the second was tried; raise --epochs"
        assert second.returncode == 2, second.stderr[-1500:]
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "Another `zoo finetune`" in lines[0] and "Traceback" not in second.stderr
        assert state.exists(), "the refused run removed the first run's checkpoint"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    # the first run's checkpoint is intact and consistent: it can be resumed
    epoch = json.loads(state.read_text())["epoch"]
    assert epoch >= 1 and history_epochs(out) == list(range(1, epoch + 1))


def test_lock_is_released_when_its_holder_is_killed(tmp_path):
    """An fcntl lock dies with its process: a crashed run never blocks the next one for ever."""
    import subprocess
    import sys

    from zoo.training.checkpoint import RunLock

    out = tmp_path / "out"
    code = ("import sys, time\nfrom pathlib import Path\nfrom zoo.training.checkpoint import RunLock\n"
            "lock = RunLock(Path(sys.argv[1])).__enter__()\nprint('LOCKED', flush=True)\ntime.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        from zoo.errors import UsageError

        with pytest.raises(UsageError, match="Another `zoo finetune`"):
            with RunLock(out):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    with RunLock(out):  # free again
        pass


def test_lock_file_removed_between_open_and_flock_does_not_give_two_holders(tmp_path, monkeypatch):
    """Run A finishes (unlocks and unlinks the lock file) while run B is between open() and flock():
    B must not end up holding a lock on the orphaned file while run C locks a new one."""
    import fcntl

    from zoo.errors import UsageError
    from zoo.training import checkpoint as ck

    out = tmp_path / "out"
    a = ck.RunLock(out).__enter__()
    real = fcntl.flock
    state = {"done": False}

    def flock(fd, op):
        if op & fcntl.LOCK_EX and not state["done"]:
            state["done"] = True
            a.__exit__(None, None, None)  # A ends right now, after B opened the old file
        return real(fd, op)

    monkeypatch.setattr(ck.fcntl, "flock", flock)
    b = ck.RunLock(out).__enter__()
    monkeypatch.undo()
    try:
        assert state["done"]
        with pytest.raises(UsageError, match="Another `zoo finetune`"):
            ck.RunLock(out).__enter__()  # C
    finally:
        b.__exit__(None, None, None)
