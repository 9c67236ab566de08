"""zoo never deletes what it did not write: `zoo finetune --resume/--overwrite` and `zoo export` act
only on folders carrying zoo's ownership mark, only on zoo's own names, and never through a link."""

from __future__ import annotations

import os

import pytest

from helpers import zoo_cli


def _snapshot(folder):
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
            for p in sorted(folder.rglob("*"))}


def _user_folder(tmp_path):
    out = tmp_path / "mine"
    (out / "checkpoint").mkdir(parents=True)
    (out / "checkpoint" / "thesis.tex").write_text("years of work")
    (out / "tensorboard").mkdir()
    (out / "tensorboard" / "events").write_text("logs")
    (out / "history.csv").write_text("my,data\n")
    return out


@pytest.mark.parametrize("flag", ["resume", "overwrite"])
def test_finetune_resume_or_overwrite_on_a_non_zoo_folder_deletes_nothing(tmp_path, flag):
    import zoo
    from zoo.errors import UsageError

    out = _user_folder(tmp_path)
    before = _snapshot(out)
    with pytest.raises(UsageError, match="not a zoo finetune run"):
        zoo.finetune("lenet5", tmp_path, out=out, epochs=1, weights="none", verbose=0, **{flag: True})
    assert _snapshot(out) == before


def test_finetune_overwrite_with_symlinked_checkpoint_deletes_nothing(tmp_path):
    import zoo
    from zoo.errors import UsageError
    from zoo.ownership import mark_owned

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious").write_text("keep")
    out = tmp_path / "run"
    out.mkdir()
    mark_owned(out, "finetune")
    (out / "history.csv").write_text("epoch\n1\n")
    os.symlink(elsewhere, out / "checkpoint")
    before = _snapshot(out)
    with pytest.raises(UsageError, match="symbolic link"):
        zoo.finetune("lenet5", tmp_path, out=out, epochs=1, weights="none", verbose=0, overwrite=True)
    assert _snapshot(out) == before and (elsewhere / "precious").read_text() == "keep"


def test_finetune_cli_overwrite_on_a_non_zoo_folder_is_one_line_exit_2(tmp_path):
    out = _user_folder(tmp_path)
    before = _snapshot(out)
    result = zoo_cli("finetune", "lenet5", str(tmp_path), "--out", str(out), "--overwrite", "--weights", "none")
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert _snapshot(out) == before


def test_remove_owned_checks_every_name_before_removing_any(tmp_path):
    from zoo.errors import UsageError
    from zoo.ownership import mark_owned, remove_owned

    out = tmp_path / "run"
    out.mkdir()
    mark_owned(out, "finetune")
    (out / "history.csv").write_text("x")
    target = tmp_path / "target"
    target.mkdir()
    (target / "f").write_text("keep")
    os.symlink(target, out / "tensorboard")
    with pytest.raises(UsageError, match="symbolic link"):
        remove_owned(out, ["history.csv", "tensorboard"])
    assert (out / "history.csv").exists() and (target / "f").exists()


def test_ownership_mark_that_is_a_link_is_no_mark(tmp_path):
    from zoo.ownership import MARK, is_owned, mark_owned

    real = tmp_path / "real"
    real.mkdir()
    mark_owned(real, "export")
    fake = tmp_path / "fake"
    fake.mkdir()
    os.symlink(real / MARK, fake / MARK)
    assert is_owned(real, "export") and not is_owned(fake) and not is_owned(real, "finetune")


@pytest.mark.parametrize("overwrite", [False, True])
def test_export_out_existing_folder_deletes_nothing(tmp_path, overwrite):
    """`zoo export --format savedmodel --out EXISTING` used to move the folder aside and remove it."""
    import zoo
    from zoo.errors import UsageError

    out = _user_folder(tmp_path)
    before = _snapshot(out)
    with pytest.raises(UsageError, match="not a folder written by `zoo export`"):
        zoo.export("lenet5", format="savedmodel", out=out, weights="none", overwrite=overwrite)
    assert _snapshot(out) == before


def test_export_out_home_is_refused(tmp_path, monkeypatch):
    home = _user_folder(tmp_path)
    monkeypatch.setenv("HOME", str(home))
    before = _snapshot(home)
    result = zoo_cli("export", "lenet5", "--weights", "none", "--format", "savedmodel", "--out", "~", "--overwrite",
                     env={"HOME": str(home)})
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and _snapshot(home) == before


@pytest.mark.parametrize("out", [".", ".."])
def test_export_out_dot_is_one_line_and_deletes_nothing(tmp_path, out):
    work = _user_folder(tmp_path)
    before = _snapshot(tmp_path)
    result = zoo_cli("export", "lenet5", "--weights", "none", "--format", "savedmodel", "--out", out, cwd=work)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and _snapshot(tmp_path) == before


def test_export_out_existing_file_needs_overwrite(tmp_path):
    import zoo
    from zoo.errors import UsageError

    out = tmp_path / "model.tflite"
    out.write_bytes(b"not ours")
    with pytest.raises(UsageError, match="--overwrite"):
        zoo.export("lenet5", format="tflite", out=out, weights="none")
    assert out.read_bytes() == b"not ours"


def test_export_out_symlink_is_refused(tmp_path):
    import zoo
    from zoo.errors import UsageError

    target = tmp_path / "target.onnx"
    target.write_bytes(b"keep")
    os.symlink(target, tmp_path / "link.onnx")
    with pytest.raises(UsageError, match="symbolic link"):
        zoo.export("lenet5", format="onnx", out=tmp_path / "link.onnx", weights="none", overwrite=True)
    assert target.read_bytes() == b"keep"
