"""Bad input to `zoo finetune`: one clear line, exit 2, before any training, nothing overwritten."""

from __future__ import annotations

import pytest
from PIL import Image

from helpers import zoo_cli


def _folder(root, counts):
    for name, n in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("L", (8, 8), i * 40).save(root / name / f"{i}.png")
    return root


@pytest.mark.parametrize("case, words", [
    ("missing", "does not exist"), ("not_folder", "not a folder"), ("one_class", "at least 2 classes"),
    ("empty_class", "hold no images"), ("no_images", "holds no images"), ("val_classes", "same classes"),
    ("occupied", "already holds"), ("unknown_model", "Unknown model"), ("unknown_opt", "Valid: hub_scale"),
])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, case, words):
    data = tmp_path / "data"
    out = tmp_path / "out"
    args = []
    model = "lenet5"
    if case == "not_folder":
        data.write_text("x")
    elif case == "one_class":
        _folder(data, {"a": 3})
    elif case == "empty_class":
        _folder(data, {"a": 3, "b": 0})
    elif case == "no_images":
        (data / "a").mkdir(parents=True)
        (data / "b").mkdir()
    elif case in ("val_classes", "occupied", "unknown_model", "unknown_opt"):
        _folder(data, {"a": 3, "b": 3})
    if case == "val_classes":
        args = ["--val", str(_folder(tmp_path / "val", {"a": 2, "z": 2}))]
    if case == "occupied":
        out.mkdir()
        (out / "model.keras").write_bytes(b"someone else's model")
        (out / "history.csv").write_text("epoch\n1\n")
    if case == "unknown_model":
        model = "resnet5O"
    if case == "unknown_opt":
        args = ["--opt", "hub_scal=0.5"]
    before = {p.name: p.read_bytes() for p in out.iterdir()} if out.exists() else None
    result = zoo_cli("finetune", model, str(data), "--out", str(out), "--epochs", "1", *args, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = [l for l in result.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    after = {p.name: p.read_bytes() for p in out.iterdir()} if out.exists() else None
    assert after == before


def test_second_run_into_a_locked_out_is_refused(tmp_path):
    from zoo.errors import UsageError
    from zoo.training.checkpoint import RunLock

    with RunLock(tmp_path / "out"):
        with pytest.raises(UsageError, match="Another `zoo finetune`"):
            with RunLock(tmp_path / "out"):
                pass
