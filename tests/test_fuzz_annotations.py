"""Fuzzing the detection readers (Pascal VOC XML, COCO JSON, YOLO txt) with hypothesis, and the
XML parser's refusal of entity expansion (billion laughs) and external entities (XXE).

The promise: read_detection on a folder with hostile annotation files returns a DetectionSet or
raises a zoo UsageError/DataError with a one-line message; never a KeyError, TypeError,
AttributeError, OverflowError, MemoryError, and never a file read through an XML entity.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from zoo.tasks.detection.data import read_detection
from zoo.errors import UsageError


def fuzz(n: int) -> settings:
    """n cases, no deadline (shared CI cores), reproducible, no example database in the checkout."""
    scale = float(os.environ.get("ZOO_FUZZ_SCALE", "1"))  # e.g. 20 for a deep nightly run
    return settings(max_examples=max(1, int(n * scale)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (10, 20, 30)).save(buf, "JPEG")
    return buf.getvalue()


JPEG = _jpeg()


def _read(root: Path) -> None:
    try:
        dataset = read_detection(root)
    except UsageError as exc:  # DataError is a UsageError
        assert str(exc) and "\n" not in str(exc), repr(str(exc))
        return
    for sample in dataset.samples:
        assert sample.boxes.shape == (len(sample.classes), 4)
        assert np.isfinite(sample.boxes).all()
        assert ((sample.classes >= 0) & (sample.classes < len(dataset.labels))).all()


# --------------------------------------------------------------------------- VOC

numbers = st.one_of(st.integers(-10**12, 10**12).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(["", " ", "1e999", "-inf", "nan", "0x10", "1,5", "١٢"]), st.text(max_size=6))
names = st.one_of(st.sampled_from(["cat", "dog", ""]), st.text(max_size=8))


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@st.composite
def voc_xml(draw) -> bytes:
    parts = ["<annotation>", f"<filename>{_esc(draw(names))}</filename>"]
    if draw(st.booleans()):
        parts.append(f"<size><width>{_esc(draw(numbers))}</width><height>{_esc(draw(numbers))}</height></size>")
    for _ in range(draw(st.integers(0, 3))):
        obj = [f"<name>{_esc(draw(names))}</name>"] if draw(st.integers(0, 5)) else []
        if draw(st.booleans()):
            obj.append(f"<difficult>{_esc(draw(numbers))}</difficult>")
        if draw(st.integers(0, 4)):
            obj.append("<bndbox>" + "".join(f"<{k}>{_esc(draw(numbers))}</{k}>" for k in ("xmin", "ymin", "xmax", "ymax")
                                             if draw(st.integers(0, 5))) + "</bndbox>")
        parts.append("<object>" + "".join(obj) + "</object>")
    parts.append("</annotation>")
    text = "".join(parts).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 4)) == 0:  # byte-level damage on top
        data = bytearray(text)
        pos = draw(st.integers(0, len(data) - 1))
        data[pos:pos + draw(st.integers(0, 3))] = draw(st.binary(max_size=3))
        text = bytes(data)
    return text


def _voc_root(tmp: Path, xml: bytes) -> Path:
    (tmp / "Annotations").mkdir()
    (tmp / "JPEGImages").mkdir()
    (tmp / "JPEGImages" / "a.jpg").write_bytes(JPEG)
    (tmp / "Annotations" / "a.xml").write_bytes(xml)
    return tmp


@fuzz(500)
@given(voc_xml())
def test_voc_reader_fuzz(tmp_path, xml):
    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:  # tmp_path is shared by every example
        _read(_voc_root(Path(tmp), xml))


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<annotation><filename>a.jpg</filename><object><name>&lol9;</name>
<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>4</xmax><ymax>4</ymax></bndbox></object></annotation>"""


def test_voc_billion_laughs_is_refused(tmp_path):
    root = _voc_root(tmp_path, BILLION_LAUGHS)
    with pytest.raises(UsageError, match="refused unsafe XML"):
        read_detection(root)


@pytest.mark.parametrize("doctype", [
    '<!DOCTYPE a [<!ENTITY xxe SYSTEM "file://{secret}">]>',
    '<!DOCTYPE a [<!ENTITY % p SYSTEM "file://{secret}"> %p;]>',
    '<!DOCTYPE a SYSTEM "file://{secret}">',
])
def test_voc_external_entities_never_read_the_file(tmp_path, doctype):
    """XXE: an entity naming a local file must not put that file's text into a class name."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    data = tmp_path / "data"
    data.mkdir()
    xml = (f'<?xml version="1.0"?>{doctype.format(secret=secret)}<annotation><filename>a.jpg</filename>'
           f'<object><name>&xxe;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>4</xmax><ymax>4</ymax></bndbox>'
           f'</object></annotation>').encode()
    root = _voc_root(data, xml)
    try:
        dataset = read_detection(root)
    except UsageError as exc:
        assert "TOPSECRET" not in str(exc)
        return
    assert all("TOPSECRET" not in label for label in dataset.labels)


# --------------------------------------------------------------------------- COCO

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=6))
json_any = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                        max_leaves=8)
ids = st.one_of(st.integers(-2, 3), st.sampled_from(["1", "x", "", "1.5"]), st.none(), json_any)


def _row(fields: dict, extra) -> st.SearchStrategy:
    return st.fixed_dictionaries({}, optional={**fields, "junk": extra})


image_row = st.one_of(_row({"id": ids, "file_name": st.one_of(st.just("a.jpg"), json_any),
                            "width": st.one_of(ids, st.just(8)), "height": st.one_of(ids, st.just(6))}, json_any),
                      json_any)
ann_row = st.one_of(_row({"id": ids, "image_id": ids, "category_id": ids,
                          "bbox": st.one_of(st.lists(st.one_of(st.floats(), st.integers(), st.text(max_size=3)),
                                                     max_size=5), json_any),
                          "iscrowd": json_any}, json_any), json_any)
cat_row = st.one_of(_row({"id": ids, "name": st.one_of(st.text(max_size=5), json_any)}, json_any), json_any)
coco_doc = st.one_of(
    st.fixed_dictionaries({"images": st.one_of(st.lists(image_row, max_size=3), json_any)},
                          optional={"annotations": st.one_of(st.lists(ann_row, max_size=4), json_any),
                                    "categories": st.one_of(st.lists(cat_row, max_size=3), json_any)}),
    json_any.map(lambda v: {"images": v}),
)


@fuzz(800)
@given(coco_doc)
def test_coco_reader_fuzz(tmp_path, doc):
    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:  # tmp_path is shared by every example
        root = Path(tmp)
        (root / "images").mkdir()
        (root / "images" / "a.jpg").write_bytes(JPEG)
        (root / "instances.json").write_text(json.dumps(doc))
        _read(root)


@fuzz(200)
@given(st.binary(max_size=200))
def test_coco_reader_on_bytes(tmp_path, data):
    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:  # tmp_path is shared by every example
        root = Path(tmp)
        (root / "images").mkdir()
        (root / "instances.json").write_bytes(b'{"images": ' + data)
        _read(root)


# --------------------------------------------------------------------------- YOLO

token = st.one_of(st.integers(-5, 5).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                  st.sampled_from(["0", "0.5", "1", "nan", "inf", "1e308", "99999999999999", "-0"]), st.text(max_size=4))
yolo_line = st.lists(token, max_size=7).map(" ".join)


@fuzz(500)
@given(st.lists(yolo_line, max_size=5), st.one_of(st.none(), st.binary(max_size=40), st.text(max_size=40)))
def test_yolo_reader_fuzz(tmp_path, lines, classes):
    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:  # tmp_path is shared by every example
        root = Path(tmp)
        (root / "images").mkdir()
        (root / "labels").mkdir()
        (root / "images" / "a.jpg").write_bytes(JPEG)
        (root / "labels" / "a.txt").write_bytes("\n".join(lines).encode("utf-8", "replace"))
        if classes is not None:
            target = root / "classes.txt"
            target.write_bytes(classes if isinstance(classes, bytes) else classes.encode("utf-8", "replace"))
        _read(root)


def test_yolo_huge_class_index_is_an_error_not_a_memory_bomb(tmp_path):
    """`99999999999 0.5 0.5 0.1 0.1` without class names must not allocate 10^11 label strings."""
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(JPEG)
    (tmp_path / "labels" / "a.txt").write_text("99999999999 0.5 0.5 0.1 0.1\n")
    with pytest.raises(UsageError, match="99999999999"):
        read_detection(tmp_path)


@fuzz(60)
@given(st.integers(1, 3000), st.sampled_from(["[", '{"a":']), st.sampled_from(["images", "annotations", "categories"]))
def test_coco_nesting_at_any_depth_is_one_line(tmp_path, depth, opener, key):
    """A 1000-deep COCO JSON used to end in a RecursionError traceback."""
    closer = "]" if opener == "[" else "}"
    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:
        root = Path(tmp)
        (root / "images").mkdir()
        (root / "instances.json").write_text('{"images": [], "%s": %s1%s}' % (key, opener * depth, closer * depth))
        _read(root)
