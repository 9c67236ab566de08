"""One CLI error mapper (zoo.cli.common): in every command, a usage mistake exits 2 and any other
failure exits 1, each with one line on stderr and no traceback; a closed pipe ends quietly."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import urllib.error

import pytest

from zoo.errors import ImageError, UsageError, WeightsError

# command line -> the function it calls, made to fail
COMMANDS = {
    "predict": (["predict", "a.jpg", "--model", "resnet18"], "zoo.inference", "iter_predict"),
    "evaluate": (["evaluate", "resnet18", "data"], "zoo", "evaluate"),
    "export": (["export", "resnet18", "--format", "onnx", "--out", "m.onnx"], "zoo.exporting", "export_with_report"),
    "bench": (["bench", "resnet18"], "zoo.benchmark", "bench"),
    "finetune": (["finetune", "resnet18", "data", "--out", "run"], "zoo", "finetune"),
    "weights fetch": (["weights", "fetch", "resnet18.tv_in1k"], "zoo.pretrained.cache", "fetch_weights"),
    "weights verify": (["weights", "verify"], "zoo.pretrained.cache", "verify_cache"),
    "weights list": (["weights", "list"], "zoo.pretrained.cache", "list_rows"),
    "list": (["list"], "zoo.registry", "list_models"),
    "info": (["info", "resnet18"], "zoo.registry", "info"),
}

ERRORS = {
    "usage": (lambda: UsageError("`top_k` must be a whole number >= 1. Received: top_k=0."), 2, "top_k"),
    "weights": (lambda: WeightsError("Could not fetch w.bin: connection refused."), 1, "Could not fetch"),
    "network": (lambda: urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")), 1,
                "Connection refused"),
    "disk": (lambda: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/run/model.keras"), 1, "Free some space"),
    "permission": (lambda: PermissionError(errno.EACCES, "Permission denied", "/data/run"), 1, "Permission denied"),
    "image": (lambda: ImageError("a.jpg: not an image (truncated JPEG)"), 1, "not an image"),
    "unexpected": (lambda: RuntimeError("a bug\nover two lines"), 1, "RuntimeError: a bug over two lines"),
}


def _run(monkeypatch, capsys, args):
    from zoo.cli import main, quiet

    monkeypatch.setattr(quiet, "install", lambda: None)  # in-process: leave fd 2 to capsys
    monkeypatch.delenv("ZOO_VERBOSE", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("kind", sorted(ERRORS))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_maps_every_error_alike(monkeypatch, capsys, command, kind):
    import importlib

    args, module, name = COMMANDS[command]
    make, code, words = ERRORS[kind]

    def fail(*_args, **_kwargs):
        raise make()

    monkeypatch.setattr(importlib.import_module(module), name, fail)
    status, err = _run(monkeypatch, capsys, args)
    lines = err.strip().splitlines()
    assert status == code, err
    assert len(lines) == 1 and lines[0].startswith("Error: ") and words in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize("args", [["predict", "a.jpg", "--model", "m", "--top-k", "many"], ["bench"],
                                  ["weights", "fetch"], ["nosuch"], ["--nosuch"]])
def test_click_usage_errors_are_one_line_exit_2(monkeypatch, capsys, args):
    status, err = _run(monkeypatch, capsys, args)
    assert status == 2 and len(err.strip().splitlines()) == 1 and err.startswith("Error: "), err


def test_one_network_failure_exits_1_from_predict_and_from_weights_fetch(monkeypatch, capsys, tmp_path):
    """ZOO_OFFLINE=1 with weights not in the cache: the failure to get them, whichever command meets it."""
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    image = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(image)
    for args in (["predict", str(image), "--model", "resnet18", "--weights", "tv_in1k"],
                 ["weights", "fetch", "resnet18.tv_in1k"]):
        status, err = _run(monkeypatch, capsys, args)
        assert status == 1 and len(err.strip().splitlines()) == 1 and "ZOO_OFFLINE" in err, (args, err)


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`zoo predict ... | head -2`: the reader leaves after two records; zoo stops without a word."""
    import numpy as np
    from PIL import Image

    from zoo.modeldir import attach_meta, write_model_dir
    import keras

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs)))
    attach_meta(model, {"arch": "tiny", "task": "classification", "labels": ["a", "b"], "input_shape": [8, 8, 3]})
    run = write_model_dir(model, tmp_path / "run")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    # far more output than a pipe buffers (64 KiB), so zoo is still writing when the reader leaves
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'a.png'}\n" * 3000)
    proc = subprocess.Popen([sys.executable, "-m", "zoo", "predict", str(tmp_path / "list.txt"), "--model", str(run),
                             "--format", "jsonl"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        first = [proc.stdout.readline() for _ in range(2)]
        proc.stdout.close()  # what `head -2` does once it has its lines
        err = proc.stderr.read().decode()
        status = proc.wait(timeout=300)
    finally:
        proc.kill()
    assert all(line.startswith(b'{"source"') for line in first)
    assert status == 0, err
    assert err.strip() == "", err
