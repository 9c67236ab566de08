"""Hostile HDF5 weights and .keras zips: refused in one line before any dataset is read, never
loading bytes from another file, never allocating what the file does not hold, never hanging."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest

from zoo.errors import ZooError
from zoo.registry import resolve_weights

h5py = pytest.importorskip("h5py")


def _refused(path, match):
    with pytest.raises(ZooError, match=match) as err:
        resolve_weights("lenet5", str(path))
    assert "\n" not in str(err.value).strip()


def test_h5_external_storage_pointing_at_a_local_file_is_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"private key material" * 4)
    path = tmp_path / "evil.weights.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("layers/dense/vars/0", shape=(20,), dtype="f4", external=[(str(secret), 0, 80)])
    _refused(path, "external storage")


def test_h5_external_storage_pointing_at_a_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    path = tmp_path / "evil.weights.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("layers/dense/vars/0", shape=(20,), dtype="f4", external=[(str(fifo), 0, 80)])
    _refused(path, "external storage")  # a hang would stop the suite here


def test_h5_external_link_is_refused(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["layers/dense/vars/0"] = np.ones(4, "f4")
    path = tmp_path / "evil.weights.h5"
    with h5py.File(path, "w") as f:
        f["layers"] = h5py.ExternalLink(str(other), "/layers")
    _refused(path, "external link")


def test_h5_virtual_dataset_is_refused(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.ones(4, "f4")
    layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
    layout[:] = h5py.VirtualSource(str(other), "data", shape=(4,))
    path = tmp_path / "evil.weights.h5"
    with h5py.File(path, "w") as f:
        f.create_group("layers/dense/vars").create_virtual_dataset("0", layout)
    _refused(path, "virtual dataset")


@pytest.mark.parametrize("elements, chunks", [(10**12, True), (1_500_000_000, None)])
def test_h5_declaring_more_elements_than_it_stores_is_refused(tmp_path, elements, chunks):
    """A 780 KB file declaring 10^12 elements used to end in a MemoryError traceback; 1.5e9 in 3 GB RSS."""
    path = tmp_path / "bomb.weights.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("layers/dense/vars/0", shape=(elements,), dtype="f4", chunks=chunks)
    assert path.stat().st_size < 1 << 20
    _refused(path, "declares")


def _zip_bomb(path):
    """A .keras-shaped zip under 1 MiB whose weights member unpacks to 32 MiB."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"\0" * (32 << 20))
    assert path.stat().st_size < 1 << 20
    return path


def test_keras_zip_with_a_huge_member_is_refused_before_reading(tmp_path):
    _refused(_zip_bomb(tmp_path / "bomb.keras"), "zip bomb")


def test_keras_model_file_with_a_huge_member_is_refused_before_keras_reads_it(tmp_path):
    import zoo
    from zoo.errors import UsageError

    with pytest.raises(UsageError, match="zip bomb"):
        zoo.load_model(_zip_bomb(tmp_path / "bomb.keras"))


def test_keras_model_file_whose_weights_use_external_storage_is_refused(tmp_path):
    """Keras itself reads model.weights.h5 inside a .keras: zoo checks it first."""
    import keras

    import zoo
    from zoo.errors import ZooError

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    good = tmp_path / "good.keras"
    model.save(good)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"s" * 64)
    evil_h5 = tmp_path / "w.h5"
    with h5py.File(evil_h5, "w") as f:
        f.create_dataset("layers/dense/vars/0", shape=(3, 2), dtype="f4", external=[(str(secret), 0, 24)])
    evil = tmp_path / "evil.keras"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            data = evil_h5.read_bytes() if info.filename == "model.weights.h5" else src.read(info)
            dst.writestr(info.filename, data)
    with pytest.raises(ZooError, match="external storage"):
        zoo.load_model(evil)


def _lenet_file_with(tmp_path, key, elements):
    """The shipped-architecture lenet5's own .weights.h5, plus `key` holding `elements` zeros stored
    gzip-compressed (about 1 KB per MB declared: within what check_h5 allows for compressed data)."""
    import zoo

    path = tmp_path / "lenet5.weights.h5"
    zoo.build("lenet5", weights=None).save_weights(path)
    with h5py.File(path, "a") as f:
        if key in f:
            del f[key]
        f.create_dataset(key, data=np.zeros(elements, "f4"), chunks=(1 << 20,), compression="gzip",
                         compression_opts=9)
    return path


def test_h5_tensor_far_larger_than_the_model_is_refused_before_it_is_read(tmp_path):
    """A dataset of the model's own layer declaring 200 MB for a model of 60 k parameters: refused from
    its declared size (and never allocated), not read and then found the wrong shape."""
    import tracemalloc

    path = _lenet_file_with(tmp_path, "layers/conv2d/vars/0", 50_000_000)
    assert path.stat().st_size < 2 << 20
    import zoo

    tracemalloc.start()
    try:
        with pytest.raises(ZooError, match=r"declare 50,061,556 values where the model.s layers hold 61,706") as err:
            zoo.build("lenet5", weights=str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 << 20, peak
    assert "\n" not in str(err.value).strip()


def test_h5_tensors_of_layers_the_model_lacks_are_never_read(tmp_path):
    import tracemalloc

    import zoo

    path = _lenet_file_with(tmp_path, "layers/no_such_layer/vars/0", 50_000_000)
    tracemalloc.start()
    try:
        model = zoo.build("lenet5", weights=str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 << 20, peak
    assert "no_such_layer" in model._zoo_load_report.unused
