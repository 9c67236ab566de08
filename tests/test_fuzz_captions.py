"""Fuzzing the captions readers (Flickr8k token file, CSV, COCO captions JSON) and classification CSVs.

The promise: read_captions returns a CaptionSet whose captions name existing images, or raises a
one-line zoo DataError/UsageError (a file that is not UTF-8 names its line); never a TypeError from
a list where an id goes, never a csv.Error.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from zoo.errors import UsageError
from zoo.tasks.captioning.data import read_captions


def fuzz(n: int) -> settings:
    """n cases, no deadline (shared CI cores), reproducible, no example database in the checkout.
    Each case writes its folder in a fresh directory under pytest's tmp_path (shared by the cases
    of one test, hence the suppressed function-scoped-fixture health check)."""
    scale = float(os.environ.get("ZOO_FUZZ_SCALE", "1"))  # e.g. 20 for a deep nightly run
    return settings(max_examples=max(1, int(n * scale)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(buf, "PNG")
    return buf.getvalue()


PNG = _png()
names = st.one_of(st.sampled_from(["a.png", "b.png", "a.png#0", "../a.png", "/etc/passwd", "", "images/a.png"]),
                  st.text(max_size=6))
caption = st.one_of(st.sampled_from(["a red square", "", "  ", '"quoted, with comma"', "tab\tinside"]),
                    st.text(max_size=12))


def _read(data: Path) -> None:
    try:
        result = read_captions(data)
    except UsageError as exc:
        assert str(exc) and "\n" not in str(exc), repr(str(exc))
        return
    for path, caps in result.items:
        assert path.is_file() and caps and all(isinstance(c, str) and c.strip() for c in caps)


def _folder(tmp: str, filename: str, content: bytes) -> Path:
    data = Path(tmp)
    (data / "images").mkdir()
    (data / "images" / "a.png").write_bytes(PNG)
    (data / "images" / "b.png").write_bytes(PNG)
    (data / filename).write_bytes(content)
    return data


@fuzz(400)
@given(st.lists(st.tuples(names, st.sampled_from(["\t", ",", " ", ""]), caption), max_size=6),
       st.sampled_from(["captions.txt", "captions.csv"]))
def test_token_and_csv_files(tmp_path, rows, filename):
    text = "\n".join(f"{n}{sep}{c}" for n, sep, c in rows)
    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:
        _read(_folder(tmp, filename, text.encode("utf-8", "surrogatepass")))


@fuzz(300)
@given(st.binary(max_size=120), st.sampled_from(["captions.txt", "captions.csv", "captions.json"]))
def test_raw_bytes_including_non_utf8(tmp_path, raw, filename):
    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:
        _read(_folder(tmp, filename, b"a.png\tfirst line\n" + raw))


leaf = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False), st.text(max_size=5))
anything = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                        max_leaves=6)
ids = st.one_of(st.integers(0, 2), anything)
coco = st.fixed_dictionaries({}, optional={
    "images": st.one_of(st.lists(st.one_of(st.fixed_dictionaries({}, optional={"id": ids, "file_name": st.one_of(names, anything)}),
                                           anything), max_size=3), anything),
    "annotations": st.one_of(st.lists(st.one_of(st.fixed_dictionaries({}, optional={"image_id": ids, "caption": st.one_of(caption, anything)}),
                                                anything), max_size=4), anything),
})


@fuzz(600)
@given(st.one_of(coco, anything))
def test_coco_captions_json(tmp_path, doc):
    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:
        _read(_folder(tmp, "captions.json", json.dumps(doc).encode()))


def test_latin1_file_names_its_line(tmp_path):
    data = _folder(str(tmp_path), "captions.txt", "a.png\tun caf\xe9 rouge\n".encode("latin-1"))
    with pytest.raises(UsageError, match="line 1 is not UTF-8"):
        read_captions(data)


@fuzz(300)
@given(st.binary(max_size=100))
def test_classification_csv(tmp_path, raw):
    from zoo.tasks.classification.data import scan

    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:
        data = _folder(tmp, "train.csv", b"path,label\nimages/a.png,x\n" + raw)
        try:
            index = scan(data / "train.csv")
        except UsageError as exc:
            assert "\n" not in str(exc)
            return
        assert len(index.paths) == len(index.labels) and len(index.classes) >= 2


@fuzz(40)
@given(st.integers(1, 3000), st.sampled_from(["[", '{"a":']), st.sampled_from(["images", "annotations"]))
def test_coco_captions_nesting_at_any_depth_is_one_line(tmp_path, depth, opener, key):
    """A deep captions JSON used to end in a RecursionError traceback."""
    closer = "]" if opener == "[" else "}"
    doc = '{"images": [], "annotations": [], "%s": %s1%s}' % (key, opener * depth, closer * depth)
    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:
        _read(_folder(tmp, "captions.json", doc.encode()))


@fuzz(20)
@given(st.integers(100_000, 300_000), st.booleans())
def test_csv_field_of_any_size_is_one_line(tmp_path, size, quoted):
    """A 128 KB captions CSV field used to end in a csv.Error traceback."""
    field = "x" * size
    line = f'a.png,"{field}"\n' if quoted else f"a.png,{field}\n"
    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:
        _read(_folder(tmp, "captions.csv", line.encode()))
    from zoo.tasks.classification.data import scan

    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:
        data = _folder(tmp, "train.csv", f"path,label\nimages/a.png,x\nimages/b.png,{field}\n".encode())
        try:
            scan(data / "train.csv")
        except UsageError as exc:
            assert "\n" not in str(exc)
