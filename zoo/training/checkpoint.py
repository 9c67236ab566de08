"""Crash-safe run state in OUT/checkpoint: written every epoch, atomically, read by --resume.

    checkpoint/epoch-0007.npz   model weights + optimizer variables after global epoch 7
    checkpoint/best.npz         model weights of the best epoch so far
    checkpoint/state.json       {"epoch": 7, "stage": 1, "file": "epoch-0007.npz", "history": [...], ...}

state.json is replaced only after its .npz is on disk, and history.csv is rewritten from
state.json, so after a SIGKILL at any instant state.json and its .npz agree (no epoch lost, none
repeated); history.csv is the state's history, or one epoch behind it when the kill fell between
the two renames, until the next epoch or --resume rewrites it (tests/test_faults_writes.py).
Arrays are .npz loaded with allow_pickle=False: no code from data.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import UsageError
from zoo.files import atomic_write, write_text

CKPT_DIR = "checkpoint"
STATE = "state.json"
LOCK = ".zoo-finetune.lock"


def save_arrays(path: Path, arrays: list[np.ndarray]) -> None:
    atomic_write(path, lambda fh: np.savez(fh, *arrays))


def load_arrays(path: Path) -> list[np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def weights_of(variables) -> list[np.ndarray]:
    return [np.asarray(v.numpy()) for v in variables]


def assign(variables, arrays: list[np.ndarray], what: str) -> None:
    variables = list(variables)
    if len(variables) != len(arrays):
        raise UsageError(f"The checkpoint holds {len(arrays)} {what} tensors but the run has {len(variables)}; "
                         f"it was written by a different model or recipe. Use --overwrite to start again.")
    for v, a in zip(variables, arrays):
        if tuple(v.shape) != tuple(a.shape):
            raise UsageError(f"Checkpoint tensor for {v.path} has shape {a.shape}, the model's is {tuple(v.shape)}. "
                             f"Use --overwrite to start again.")
        v.assign(a)


def read_state(out: Path) -> dict[str, Any] | None:
    path = out / CKPT_DIR / STATE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path} is unreadable ({exc}); resume is impossible. Use --overwrite to start again.") from None


def write_epoch(out: Path, state: dict[str, Any], model_weights: list[np.ndarray], opt_vars: list[np.ndarray]) -> None:
    """Write the epoch checkpoint, then the state pointing at it, then history.csv; prune old files."""
    ckpt = out / CKPT_DIR
    ckpt.mkdir(parents=True, exist_ok=True)
    name = f"epoch-{state['epoch']:04d}.npz"
    save_arrays(ckpt / name, [np.asarray(len(model_weights))] + model_weights + opt_vars)
    state = {**state, "file": name}
    write_text(ckpt / STATE, json.dumps(state, indent=1, default=_json_default) + "\n")
    write_history(out / "history.csv", state["history"])
    for old in ckpt.glob("epoch-*.npz"):
        if old.name != name:
            old.unlink(missing_ok=True)


def read_epoch(out: Path, state: dict[str, Any]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    arrays = load_arrays(out / CKPT_DIR / state["file"])
    n = int(arrays[0])
    return arrays[1 : 1 + n], arrays[1 + n :]


def write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns or ["epoch"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)


class RunLock:
    """An fcntl lock on OUT: a second run into the same directory is refused, not interleaved."""

    def __init__(self, out: Path):
        self.path = out / LOCK
        self.fh = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            self.fh = open(self.path, "a+")
            try:
                fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self.fh.close()
                raise UsageError(f"Another `zoo finetune` is writing to {self.path.parent} (lock {self.path.name} is held). "
                                 f"Wait for it or choose another --out.") from None
            try:
                current = os.stat(self.path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(self.fh.fileno()).st_ino:
                return self
            # The previous holder unlinked the lock file between our open and our flock: the lock we
            # hold is on a file nobody else will open, so take the one at the path instead.
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
            self.fh.close()

    def __exit__(self, *exc):
        fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
        self.fh.close()
        self.path.unlink(missing_ok=True)
