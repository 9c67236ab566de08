"""Fuzzing metadata.json (zoo.modeldir.read_meta) and hostile model directories end to end.

The promise: a damaged or hostile metadata.json gives a one-line UsageError naming the file and the
key when the model is loaded, never a TypeError deep inside predict; labels that do not match the
classifier's outputs are refused at load time.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoo.errors import UsageError
from zoo.modeldir import META_FILE, read_meta
from zoo.safety import check_meta


def fuzz(n: int) -> settings:
    """n cases, no deadline (shared CI cores), reproducible, no example database in the checkout."""
    scale = float(os.environ.get("ZOO_FUZZ_SCALE", "1"))  # e.g. 20 for a deep nightly run
    return settings(max_examples=max(1, int(n * scale)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(), st.text(max_size=6))
anything = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                        max_leaves=10)
KEYS = ["arch", "task", "labels", "input_shape", "preprocessing", "weights", "metrics", "versions", "vocabulary",
        "max_length", "anchors", "detection", "captioning"]
plausible = {
    "labels": st.lists(st.one_of(st.text(max_size=4), leaf), max_size=4),
    "input_shape": st.lists(st.one_of(st.integers(-3, 70000), st.none(), leaf), max_size=4),
    "preprocessing": st.dictionaries(st.sampled_from(["mode", "scale", "mean", "std", "channel_order", "resize",
                                                      "crop_pct", "interpolation", "in_model"]),
                                     st.one_of(leaf, st.lists(leaf, max_size=4)), max_size=4),
}
meta_doc = st.dictionaries(st.sampled_from(KEYS), anything, max_size=5).flatmap(
    lambda d: st.fixed_dictionaries({k: plausible.get(k, st.just(v)) for k, v in d.items()}))


def _check(tmp_path, raw: bytes) -> None:
    (tmp_path / META_FILE).write_bytes(raw)
    try:
        meta = read_meta(tmp_path)
    except UsageError as exc:
        assert "\n" not in str(exc) and META_FILE in str(exc), str(exc)
        return
    assert isinstance(meta, dict)
    assert check_meta(meta, "again") is meta
    labels = meta.get("labels")
    assert labels is None or all(isinstance(s, str) for s in labels)
    shape = meta.get("input_shape")
    assert shape is None or (len(shape) == 3 and all(d is None or (type(d) is int and d > 0) for d in shape))
    for key in ("scale", "crop_pct"):
        value = (meta.get("preprocessing") or {}).get(key)
        assert value is None or (math.isfinite(value) and value > 0)


@fuzz(1000)
@given(st.one_of(meta_doc, anything))
def test_metadata_documents(tmp_path_factory, doc):
    _check(tmp_path_factory.getbasetemp(), json.dumps(doc).encode())


@fuzz(500)
@given(st.binary(max_size=64))
def test_metadata_bytes(tmp_path_factory, raw):
    _check(tmp_path_factory.getbasetemp(), b'{"labels": ' + raw)


@pytest.mark.parametrize("raw", [
    b"[" * 100_000 + b"]" * 100_000,  # nesting deeper than the recursion limit
    b'{"max_length": ' + b"9" * 5000 + b"}",  # longer than int() accepts from a string
    b'{"labels": ["a", "b"], "labels": 3}',  # duplicate key: the last one wins, and is checked
    b"\xff\xfe{\x00}\x00",  # UTF-16
    b'{"preprocessing": {"scale": NaN}}',
    b'{"input_shape": [28, 28, Infinity]}',
])
def test_metadata_edge_cases(tmp_path, raw):
    _check(tmp_path, raw)


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def lenet_dir(tmp_path_factory):
    import zoo
    from zoo.modeldir import write_model_dir

    out = tmp_path_factory.mktemp("lenet_dir") / "model"
    write_model_dir(zoo.build("lenet5", weights=None), out)
    return out


@pytest.mark.parametrize("patch,match", [
    ({"labels": [f"c{i}" for i in range(7)]}, "7 labels but the model has 10 outputs"),
    ({"labels": "tshirt,trouser"}, "`labels` must be a list of strings"),
    ({"input_shape": [28, 28]}, "`input_shape`"),
    ({"preprocessing": {"scale": "1/255"}}, "preprocessing.scale"),
    ({"preprocessing": {"resize": "stretch"}}, "preprocessing.resize"),
    ({"task": ["classification"]}, "`task` must be a string"),
])
def test_hostile_model_directory_is_refused_at_load(lenet_dir, tmp_path, patch, match):
    import shutil

    import zoo

    target = tmp_path / "m"
    shutil.copytree(lenet_dir, target)
    meta = json.loads((target / META_FILE).read_text())
    meta.update(patch)
    (target / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(UsageError, match=match):
        zoo.load_model(target)


def test_predict_with_unknown_task_is_a_usage_error(lenet_dir, tmp_path):
    import shutil

    import zoo

    target = tmp_path / "m"
    shutil.copytree(lenet_dir, target)
    meta = json.loads((target / META_FILE).read_text())
    (target / META_FILE).write_text(json.dumps({**meta, "task": "telepathy"}))
    with pytest.raises(UsageError, match="telepathy"):
        zoo.predict([np.zeros((28, 28, 1), np.uint8)], model=target)
