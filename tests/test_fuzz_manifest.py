"""Fuzzing the weights manifest parser (zoo.pretrained.manifest) with hypothesis.

The promise: any TOML-ish text in a user manifest (ZOO_MANIFEST, $ZOO_HOME/manifest.toml) either
parses into rows that satisfy the schema or raises a one-line UsageError naming the file and,
for a bad row, the row; a binary or non-UTF-8 file is a UsageError too.
"""

from __future__ import annotations

import json
import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoo.errors import UsageError
from zoo.pretrained import manifest

GOOD_ROW = {
    "format": "keras", "urls": ["https://example.org/w.weights.h5"], "sha256": "a" * 64, "classes": 10,
    "input_size": [28, 28, 1], "preprocessing": {"mode": "unit"}, "licence": "MIT", "source": "test",
}


def fuzz(n: int) -> settings:
    """n cases, no deadline (shared CI cores), reproducible, no example database in the checkout."""
    scale = float(os.environ.get("ZOO_FUZZ_SCALE", "1"))  # e.g. 20 for a deep nightly run
    return settings(max_examples=max(1, int(n * scale)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"


def to_toml(doc: dict) -> str:
    lines = []
    for arch, tags in doc.items():
        for tag, row in tags.items():
            lines.append(f"[{json.dumps(arch)}.{json.dumps(tag)}]")
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in row.items()]
    return "\n".join(lines) + "\n"


leaf = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(), st.text(max_size=6),
                 st.sampled_from(["https://x.org/a.h5", "ftp://x/y", "a" * 64, "b" * 32, "abcdef12", "rgb", "crop"]))
value = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                     max_leaves=5)
fields = st.sampled_from(sorted(manifest.SCHEMA) + ["bogus"])
pre_keys = st.sampled_from(list(manifest.PREPROCESSING_KEYS) + ["bogus"])
mutation = st.one_of(
    st.tuples(fields, value),  # a field set to anything
    st.tuples(fields, st.none()),  # a field removed
    st.tuples(st.just("preprocessing"), st.dictionaries(pre_keys, value, max_size=4)),
    st.tuples(st.just("notop"), st.dictionaries(st.sampled_from(["urls", "file", "sha256", "md5", "sha256_prefix",
                                                                 "pin", "size", "filename", "x"]), value, max_size=4)),
)


@st.composite
def mutated_row(draw):
    row = dict(GOOD_ROW)
    for key, val in draw(st.lists(mutation, min_size=1, max_size=3)):
        if val is None:
            row.pop(key, None)
        else:
            row[key] = val
    return row


def _check(origin: str, text: str) -> None:
    try:
        rows = manifest._parse(origin, text)
    except UsageError as exc:
        assert "\n" not in str(exc) and origin in str(exc), str(exc)
        return
    for key, row in rows.items():
        assert row["format"] in manifest.FORMATS and isinstance(row["classes"], int) and row["classes"] >= 1
        assert len(row["input_size"]) == 3


@fuzz(600)
@given(mutated_row())
def test_mutated_rows(row):
    _check("fuzz.toml", to_toml({"resnet50": {"mine": row}}))


@fuzz(300)
@given(st.dictionaries(st.text(max_size=4), st.one_of(value, st.dictionaries(st.text(max_size=4), value, max_size=2)),
                       max_size=3))
def test_toml_documents_of_any_shape(doc):
    lines = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in doc.items()]
    _check("fuzz.toml", "\n".join(lines))


@fuzz(500)
@given(st.lists(st.sampled_from(list('[]."=\n abc123{},#\'') + ["true", "urls", "sha256"]), max_size=40).map("".join))
def test_toml_ish_text(text):
    _check("fuzz.toml", text)


@pytest.mark.parametrize("raw", [b"\xff\xfe\x00garbage", b"[a.b]\nformat = \"keras\"\xe9\n", b"\x00" * 10])
def test_binary_or_non_utf8_manifest_file_is_a_usage_error(tmp_path, monkeypatch, raw):
    path = tmp_path / "mine.toml"
    path.write_bytes(raw)
    monkeypatch.setenv("ZOO_MANIFEST", str(path))
    with pytest.raises(UsageError, match="mine.toml"):
        manifest.rows()


def test_good_row_parses():
    """The fuzzers start from a row that is valid, so their failures come from the mutations."""
    rows = manifest._parse("fuzz.toml", to_toml({"resnet50": {"mine": GOOD_ROW}}))
    assert rows["resnet50.mine"]["classes"] == 10
