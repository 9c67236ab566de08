"""Detection readers (VOC, COCO JSON, YOLO txt), bad boxes and files, safe XML, box-aware augmentation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import shapes_module
from zoo.errors import DataError, UsageError
from zoo.tasks.detection.augment import augment, colour_jitter, hflip, jitter_letterbox, letterbox, mosaic
from zoo.tasks.detection.data import load_sample, read_detection


@pytest.fixture
def voc(tmp_path):
    return shapes_module().make_shapes(tmp_path / "voc", images=6, size=64, seed=3)


def _voc_boxes(root: Path) -> dict[str, list]:
    ds = read_detection(root)
    return {s.path.stem: sorted((ds.labels[c], *b.tolist()) for b, c in zip(s.boxes, s.classes)) for s in ds.samples}


def test_voc_reader_matches_generator_and_is_seeded(voc, tmp_path):
    ds = read_detection(voc)
    assert ds.format == "voc" and ds.labels == ["circle", "square", "triangle"]
    assert ds.summary["images"] == 6 and ds.summary["boxes"] == sum(len(s.boxes) for s in ds.samples)
    assert ds.summary["clipped_boxes"] == ds.summary["skipped_boxes"] == 0
    again = shapes_module().make_shapes(tmp_path / "again", images=6, size=64, seed=3)
    assert _voc_boxes(voc) == _voc_boxes(again)
    for sample in ds.samples:
        image, boxes = load_sample(sample)
        assert image.shape == (64, 64, 3) and boxes.shape == (len(sample.classes), 4)


def test_generator_boxes_are_exact(voc):
    """Every box holds its shape: inside, pixels differ from the background; the box's border rows touch it."""
    ds = read_detection(voc)
    sample = next(s for s in ds.samples if len(s.boxes) == 1)
    image = np.asarray(Image.open(sample.path).convert("RGB")).astype(int)
    x0, y0, x1, y1 = sample.boxes[0].astype(int)
    background = image[0, 0] if not (x0 == 0 and y0 == 0) else image[-1, -1]
    differs = np.abs(image - background).sum(axis=2) > 60
    ys, xs = np.nonzero(differs)
    assert abs(xs.min() - x0) <= 1 and abs(ys.min() - y0) <= 1
    assert abs(xs.max() + 1 - x1) <= 1 and abs(ys.max() + 1 - y1) <= 1


def _to_coco(voc: Path, out: Path) -> Path:
    ds = read_detection(voc)
    (out / "images").mkdir(parents=True)
    images, anns = [], []
    for i, s in enumerate(ds.samples):
        (out / "images" / s.path.name).write_bytes(s.path.read_bytes())
        images.append({"id": i + 10, "file_name": s.path.name, "width": 64, "height": 64})
        for b, c in zip(s.boxes, s.classes):
            anns.append({"id": len(anns) + 1, "image_id": i + 10, "category_id": int(c) + 5, "iscrowd": 0,
                         "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]})
    cats = [{"id": k + 5, "name": n} for k, n in enumerate(ds.labels)]
    (out / "annotations").mkdir()
    path = out / "annotations" / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return out


def _to_yolo(voc: Path, out: Path) -> Path:
    ds = read_detection(voc)
    (out / "images").mkdir(parents=True)
    (out / "labels").mkdir()
    (out / "data.yaml").write_text("path: .\nnames:\n  0: circle\n  1: square\n  2: triangle\n")
    for s in ds.samples:
        (out / "images" / s.path.name).write_bytes(s.path.read_bytes())
        lines = [f"{c} {(b[0] + b[2]) / 128} {(b[1] + b[3]) / 128} {(b[2] - b[0]) / 64} {(b[3] - b[1]) / 64}"
                 for b, c in zip(s.boxes, s.classes)]
        (out / "labels" / f"{s.path.stem}.txt").write_text("\n".join(lines) + "\n")
    return out


def test_coco_and_yolo_readers_give_the_voc_boxes(voc, tmp_path):
    expected = _voc_boxes(voc)
    for root in (_to_coco(voc, tmp_path / "coco"), _to_yolo(voc, tmp_path / "yolo")):
        ds = read_detection(root)
        assert ds.labels == ["circle", "square", "triangle"]
        got = {}
        for s in ds.samples:
            _, boxes = load_sample(s)
            got[s.path.stem] = sorted((ds.labels[c], *b.tolist()) for b, c in zip(boxes, s.classes))
        assert got.keys() == expected.keys()
        for key in expected:
            np.testing.assert_allclose([r[1:] for r in got[key]], [r[1:] for r in expected[key]], atol=1e-3)
            assert [r[0] for r in got[key]] == [r[0] for r in expected[key]]


def _write_voc(root: Path, objects: str, *, filename: str = "a.jpg", image: bool = True, size=(40, 30)) -> Path:
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "JPEGImages").mkdir(exist_ok=True)
    if image:
        Image.new("RGB", size, (10, 20, 30)).save(root / "JPEGImages" / filename)
    (root / "Annotations" / (Path(filename).stem + ".xml")).write_text(
        f"<annotation><filename>{filename}</filename><size><width>{size[0]}</width><height>{size[1]}</height>"
        f"<depth>3</depth></size>{objects}</annotation>")
    return root


def _obj(name, x0, y0, x1, y1, difficult=0):
    return (f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
            f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>")


def test_bad_boxes_are_clipped_or_skipped_with_counts(tmp_path):
    root = _write_voc(tmp_path / "d", _obj("cat", -5, 2, 20, 50) + _obj("cat", 10, 10, 10, 20) + _obj("dog", 30, 20, 25, 25)
                      + _obj("cat", 1, 1, 5, 5, difficult=1) + _obj("cat", "nan", 1, 5, 5))
    ds = read_detection(root)
    s = ds.samples[0]
    np.testing.assert_allclose(s.boxes, [[0, 2, 20, 30], [1, 1, 5, 5]])
    assert s.difficult.tolist() == [False, True]
    assert ds.summary["clipped_boxes"] == 1
    assert ds.summary["skipped_boxes"] == 3  # zero width, inverted, NaN
    assert ds.summary["boxes"] == 2


def test_unknown_classes_and_images_without_objects_are_counted(tmp_path):
    root = _write_voc(tmp_path / "d", _obj("cat", 1, 1, 9, 9) + _obj("zebra", 1, 1, 9, 9))
    _write_voc(root, "", filename="b.jpg")
    ds = read_detection(root, labels=["cat", "dog"])
    assert ds.summary["unknown_class_boxes"] == 1 and ds.summary["unknown_classes"] == ["zebra"]
    assert ds.summary["images_without_objects"] == 1
    assert ds.summary["per_class"] == {"cat": 1, "dog": 0}


def test_missing_files_name_the_file(tmp_path):
    root = _write_voc(tmp_path / "d", _obj("cat", 1, 1, 9, 9), image=False)
    with pytest.raises(DataError, match=r"a\.xml.*a\.jpg.*missing"):
        read_detection(root)
    yolo = tmp_path / "y"
    (yolo / "images").mkdir(parents=True)
    (yolo / "labels").mkdir()
    Image.new("RGB", (8, 8)).save(yolo / "images" / "x.png")
    with pytest.raises(DataError, match=r"x\.txt"):
        read_detection(yolo)
    with pytest.raises(UsageError, match="not a folder"):
        read_detection(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="VOC"):
        read_detection(tmp_path / "empty")


def test_xml_entities_are_refused(tmp_path):
    root = _write_voc(tmp_path / "d", _obj("cat", 1, 1, 9, 9))
    bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
            '<annotation><filename>a.jpg</filename><object><name>&lol2;</name><bndbox><xmin>1</xmin><ymin>1</ymin>'
            '<xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>')
    (root / "Annotations" / "a.xml").write_text(bomb)
    with pytest.raises(DataError, match="unsafe XML"):
        read_detection(root)
    external = ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                '<annotation><filename>a.jpg</filename><object><name>&x;</name></object></annotation>')
    (root / "Annotations" / "a.xml").write_text(external)
    with pytest.raises(DataError, match="unsafe XML"):
        read_detection(root)


def _drawn(size=(60, 40), box=(5, 8, 25, 30)):
    image = np.zeros((size[1], size[0], 3), np.uint8)
    x0, y0, x1, y1 = box
    image[y0:y1, x0:x1] = 255
    return image, np.array([box], np.float32)


def _pixel_box(image, threshold=128):
    ys, xs = np.nonzero(image[..., 0] > threshold)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def test_boxes_after_flip():
    image, boxes = _drawn()
    flipped, fboxes = hflip(image, boxes)
    np.testing.assert_allclose(fboxes[0], [60 - 25, 8, 60 - 5, 30])
    np.testing.assert_allclose(_pixel_box(flipped), fboxes[0])


def test_boxes_follow_letterbox_and_jitter():
    image, boxes = _drawn()
    out, lboxes, info = letterbox(image, boxes, 96)
    assert out.shape == (96, 96, 3) and info["pad"] == (16, 0)
    np.testing.assert_allclose(_pixel_box(out), lboxes[0], atol=1.5)
    rng = np.random.default_rng(0)
    for _ in range(20):
        out, jboxes, keep = jitter_letterbox(image, boxes, 96, rng, scale=0.3, translate=0.1)
        if len(keep) and (jboxes[0, 2:] - jboxes[0, :2]).min() > 4:
            np.testing.assert_allclose(_pixel_box(out), jboxes[0], atol=1.5)


def test_jitter_drops_boxes_pushed_off_the_canvas():
    image, boxes = _drawn(size=(100, 100), box=(0, 0, 10, 10))
    rng = np.random.default_rng(0)
    kept = [len(jitter_letterbox(image, boxes, 64, rng, scale=0.1, translate=0.4)[2]) for _ in range(50)]
    assert 0 in kept and 1 in kept


def test_augment_levels_keep_shapes_and_classes():
    image, boxes = _drawn()
    rng = np.random.default_rng(0)
    out, b, c = augment(image, boxes, np.array([2]), 64, rng, level="none")
    assert out.shape == (64, 64, 3) and c.tolist() == [2]
    np.testing.assert_allclose(b, letterbox(image, boxes, 64)[1])
    for level in ("light", "strong"):
        out, b, c = augment(image, boxes, np.array([2]), 64, rng, level=level)
        assert out.shape == (64, 64, 3) and out.dtype == np.uint8 and len(b) == len(c)


def test_colour_jitter_changes_colours_not_shape():
    image, _ = _drawn()
    out = colour_jitter(image, np.random.default_rng(1), strength=0.4)
    assert out.shape == image.shape and out.dtype == np.uint8 and not np.array_equal(out, image)


def test_mosaic_boxes_hold_their_objects():
    rng = np.random.default_rng(0)
    items = [(*_drawn(box=(5 + 5 * k, 8, 25 + 5 * k, 30)), np.array([k])) for k in range(4)]
    seen = set()
    for _ in range(10):
        out, boxes, classes = mosaic(items, 64, rng)
        assert out.shape == (64, 64, 3) and len(boxes) == len(classes)
        white = out[..., 0] > 128
        covered = np.zeros_like(white)
        for x0, y0, x1, y1 in np.round(boxes).astype(int):
            assert white[y0:y1, x0:x1].mean() > 0.85  # each box is on its (white) object
            covered[y0:y1, x0:x1] = True
        # every object has its box unless less than 35% of it is visible: at most 4 such remnants of
        # an object of at most (20 x 22) * (64 / 60 * 1.25)^2 pixels
        assert white[~covered].sum() <= 4 * 0.35 * 20 * 22 * (64 / 60 * 1.25) ** 2
        seen.update(classes.tolist())
    assert seen == {0, 1, 2, 3}
