"""Two MultiWorkerMirroredStrategy workers on 127.0.0.1 train in lock-step: identical weights."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from helpers import write_digits, zoo_popen


def _free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_two_local_workers_end_with_identical_weights(tmp_path):
    data = write_digits(tmp_path / "data", per_class=12, classes=range(3))
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        procs.append(zoo_popen("finetune", "lenet5", str(data), "--out", str(tmp_path / f"out{i}"), "--weights", "none",
                               "--epochs", "2", "--batch-size", "8", "--augment", "none", "--strategy", "multiworker",
                               "--quiet", env=env))
    try:
        results = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (stdout, stderr) in zip(procs, results):
        assert p.returncode == 0, stderr[-2000:]
    import zoo

    models = [zoo.load_model(tmp_path / f"out{i}") for i in range(2)]
    meta = json.loads((tmp_path / "out0" / "metadata.json").read_text())
    assert meta["strategy"]["name"] == "multiworker" and meta["strategy"]["workers"] == 2
    assert meta["strategy"]["chief"] is True
    assert json.loads((tmp_path / "out1" / "metadata.json").read_text())["strategy"]["chief"] is False
    initial = zoo.build("lenet5", num_classes=3)
    moved = False
    for a, b, c in zip(models[0].weights, models[1].weights, initial.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        moved |= a.shape == c.shape and not np.allclose(a.numpy(), c.numpy())
    assert moved  # they trained, not merely both stayed at a shared initialisation
