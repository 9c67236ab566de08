"""Two `zoo finetune` runs into the same --out: the second is refused by the run lock, even with
--overwrite or --resume (which pass the "OUT is occupied" check), and the first run's files stay;
the lock dies with its holder; a lock file unlinked mid-acquire never gives two holders.
"""

from __future__ import annotations

import signal

import pytest

from helpers import history_epochs, write_digits


def test_second_finetune_into_a_running_out_is_refused_and_deletes_nothing(tmp_path):
    """The first run holds the lock and has written a checkpoint (as `zoo finetune` does after an
    epoch); a second zoo.finetune with overwrite=True passes the "OUT is occupied" check, reads its
    data, then meets the lock: refused, and the first run's files are untouched."""
    import numpy as np

    import zoo
    from zoo.errors import UsageError
    from zoo.ownership import mark_owned
    from zoo.training import checkpoint as ck

    data = write_digits(tmp_path / "data", per_class=10, classes=range(3))
    out = tmp_path / "out"
    with ck.RunLock(out):
        ck.write_epoch(out, {"epoch": 1, "stage": 0, "history": [{"epoch": 1, "loss": 1.0}]},
                       [np.ones(3, np.float32)], [np.zeros(2, np.float32)])
        mark_owned(out, "finetune")  # as a running `zoo finetune` has marked its OUT
        before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        for extra in ({"overwrite": True}, {"resume": True}):
            with pytest.raises(UsageError, match="Another `zoo finetune`"):
                zoo.finetune("lenet5", data, out=out, epochs=2, weights="none", verbose=0, augment="none", **extra)
            assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before, extra
    assert ck.read_state(out)["epoch"] == 1 and history_epochs(out) == [1]


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
