"""zoo.files, the one writer: files get the umask's permissions, and a failed write leaves the old file."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _write_text(path):
    from zoo.files import write_text

    write_text(path, "hello\n")


def _save_image(path):
    from zoo.files import save_image

    save_image(np.zeros((4, 5, 3), np.uint8), path)


def _save_arrays(path):
    from zoo.training.checkpoint import save_arrays

    save_arrays(path, [np.arange(3)])


def _history(path):
    from zoo.training.checkpoint import write_history

    write_history(path, [{"epoch": 1, "loss": 0.5}])


def _imported_manifest(path):
    from zoo.pretrained.cache import _write_imported_row

    _write_imported_row("lenet5", "mine", {"format": "keras", "file": "x", "sha256": "0" * 64})


def _publish(path):
    from zoo.files import publish

    part = path.with_name(f".{path.name}.part")
    with open(part, "wb") as fh:  # a download's resumable part file, written as any open() would
        fh.write(b"weights")
    os.chmod(part, 0o600)
    publish(part, path)


WRITERS = {"write_text": _write_text, "save_image": _save_image, "checkpoint_arrays": _save_arrays,
           "history_csv": _history, "publish": _publish}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_files_get_the_umask_permissions(tmp_path, umask, writer):
    path = tmp_path / "out.bin"
    WRITERS[writer](path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]  # no temporary file left beside it


def test_imported_manifest_gets_the_umask_permissions(tmp_path, umask):
    from zoo.pretrained import manifest

    _imported_manifest(tmp_path)
    written = manifest.imported_manifest()
    assert stat.S_IMODE(written.stat().st_mode) == 0o666 & ~umask


def test_model_file_gets_the_umask_permissions(tmp_path, umask):
    import keras

    from zoo.modeldir import write_model_dir

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    out = write_model_dir(model, tmp_path / "run", {"arch": "tiny", "task": "classification"})
    for name in ("model.keras", "metadata.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~umask, name
    assert sorted(p.name for p in out.iterdir()) == ["metadata.json", "model.keras"]


def test_folders_get_the_umask_permissions(tmp_path, umask):
    from zoo.files import atomic_dir

    with atomic_dir(tmp_path / "unpacked") as tmp:
        (tmp / "a.txt").write_text("a")
    assert stat.S_IMODE((tmp_path / "unpacked").stat().st_mode) == 0o777 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["unpacked"]


class Boom(RuntimeError):
    pass


def _fail_midway(fh):
    fh.write(b"half of the new content")
    raise Boom("the disk went away")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    from zoo.files import atomic_dir, atomic_path, atomic_write

    path = tmp_path / "state.json"
    path.write_text("old")
    with pytest.raises(Boom):
        atomic_write(path, _fail_midway)
    with pytest.raises(Boom):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise Boom("converter crashed")
    assert path.read_text() == "old"
    folder = tmp_path / "module"
    folder.mkdir()
    (folder / "keep.txt").write_text("old")
    with pytest.raises(Boom):
        with atomic_dir(folder) as tmp:
            (tmp / "new.txt").write_text("half")
            raise Boom("archive truncated")
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["module", "state.json"]


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    from zoo.training import checkpoint as ck

    path = tmp_path / "epoch.npz"
    ck.save_arrays(path, [np.zeros(3)])

    def broken_savez(fh, *arrays):
        fh.write(b"PK\x03\x04 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError):
        ck.save_arrays(path, [np.ones(3)])
    monkeypatch.undo()
    assert np.array_equal(ck.load_arrays(path)[0], np.zeros(3))
    assert [p.name for p in tmp_path.iterdir()] == ["epoch.npz"]


def test_replacing_a_folder_swaps_it_whole(tmp_path):
    from zoo.files import atomic_dir

    folder = tmp_path / "export"
    with atomic_dir(folder) as tmp:
        (tmp / "v1.txt").write_text("1")
    with atomic_dir(folder) as tmp:
        (tmp / "v2.txt").write_text("2")
    assert [p.name for p in folder.iterdir()] == ["v2.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # the old folder, moved aside, is gone
