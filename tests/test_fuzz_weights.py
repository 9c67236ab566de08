"""Fuzzing weights files given as a path (zoo.build(arch, weights=PATH), zoo weights import).

The promise: a damaged or hostile weights file (HDF5, .keras zip, safetensors, torch pickle bytes)
is read without running code and gives a WeightsError/UsageError with one line, never an OSError
from h5py, a RecursionError from a deep safetensors header or a KeyError from a zip without weights.
"""

from __future__ import annotations

import json
import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoo.errors import ZooError
from zoo.pretrained import manifest
from zoo.registry import resolve_weights

SHIPPED = manifest.shipped_path("lenet5_fashion_mnist.weights.h5").read_bytes()


def fuzz(n: int) -> settings:
    """n cases, no deadline (shared CI cores), reproducible, no example database in the checkout."""
    scale = float(os.environ.get("ZOO_FUZZ_SCALE", "1"))  # e.g. 20 for a deep nightly run
    return settings(max_examples=max(1, int(n * scale)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


_MODEL = []


def _lenet():
    if not _MODEL:
        import zoo

        _MODEL.append(zoo.build("lenet5", weights=None))
    return _MODEL[0]


def _check(tmp_path_factory, data: bytes, suffix: str = ".weights.h5", *, read: bool = False) -> None:
    """Resolve the file (format, classes, options) and, with `read`, read its tensors for lenet5."""
    from zoo.pretrained.load import read_tensors

    path = tmp_path_factory.getbasetemp() / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        source = resolve_weights("lenet5", str(path))
        if read:
            read_tensors(_lenet(), source)
    except ZooError as exc:
        assert str(exc) and "\n" not in str(exc).strip(), repr(str(exc))


leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.text(max_size=5))
anything = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                        max_leaves=6)
tensor = st.fixed_dictionaries({}, optional={"dtype": st.one_of(st.sampled_from(["F32", "F16", "I64", "BOOL", "X"]), anything),
                                             "shape": st.one_of(st.lists(st.integers(-2, 2**40), max_size=4), anything),
                                             "data_offsets": st.one_of(st.lists(st.integers(-5, 2**40), max_size=3),
                                                                       anything)})
header = st.dictionaries(st.sampled_from(["conv1.weight", "fc.bias", "__metadata__", "x"]), st.one_of(tensor, anything),
                         max_size=3)


def _safetensors(head: dict, body: bytes) -> bytes:
    raw = json.dumps(head).encode()
    return struct.pack("<Q", len(raw)) + raw + body


@fuzz(150)
@given(header, st.binary(max_size=64))
def test_safetensors_headers(tmp_path_factory, head, body):
    _check(tmp_path_factory, _safetensors(head, body), ".safetensors", read=True)


@fuzz(300)
@given(st.sampled_from([b"\x89HDF\r\n\x1a\n", b"PK\x03\x04", b"\x80\x02", b""]), st.binary(max_size=200))
def test_magic_then_garbage(tmp_path_factory, magic, tail):
    _check(tmp_path_factory, magic + tail)


@fuzz(150)
@given(st.lists(st.tuples(st.integers(0, len(SHIPPED) - 1), st.integers(0, 255)), min_size=1, max_size=6),
       st.one_of(st.none(), st.integers(0, len(SHIPPED))))
def test_mutated_shipped_hdf5(tmp_path_factory, flips, cut):
    data = bytearray(SHIPPED[:cut] if cut is not None else SHIPPED)
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    _check(tmp_path_factory, bytes(data), read=True)


@pytest.mark.parametrize("data", [
    _safetensors({}, b"")[:8] + b"[" * 50_000 + b"]" * 50_000,  # deep JSON header
    struct.pack("<Q", 10) + b"{" + b"\x00" * 9,
    b"PK\x05\x06" + b"\x00" * 18,  # an empty zip: no model.weights.h5 inside
])
def test_weights_edge_cases(tmp_path_factory, data):
    if data.startswith(b"\x00" * 8):
        data = struct.pack("<Q", 100_000) + data[8:]
    _check(tmp_path_factory, data)


def test_zip_without_weights_entry(tmp_path):
    import zipfile

    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(ZooError):
        resolve_weights("lenet5", str(path))
