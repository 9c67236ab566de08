"""Classification data: layout checks, CSV, stratified seeded split, corrupt files skipped, class weights."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from zoo.tasks.classification import data as dc
from zoo.errors import UsageError


def _folder(root, counts: dict[str, int], size=(12, 10)):
    for name, n in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", size, (i * 20 % 255, 30, 90)).save(root / name / f"{i}.png")
    return root


def test_scan_lists_classes_sorted_with_labels(tmp_path):
    index = dc.scan(_folder(tmp_path, {"b": 2, "a": 3}))
    assert index.classes == ["a", "b"]
    assert sorted(index.labels.tolist()) == [0, 0, 0, 1, 1]


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"), ("file", "not a folder"), ("one_class", "at least 2 classes"),
    ("empty_class", "hold no images"), ("no_images", "holds no images"), ("loose", "no class folders"),
])
def test_scan_refuses_bad_layouts_with_one_line(tmp_path, case, message):
    data = tmp_path / "data"
    if case == "file":
        data.write_text("x")
    elif case == "one_class":
        _folder(data, {"a": 2})
    elif case == "empty_class":
        _folder(data, {"a": 2, "b": 0})
    elif case == "no_images":
        (data / "a").mkdir(parents=True)
        (data / "b").mkdir()
        (data / "b" / "notes.txt").write_text("x")
    elif case == "loose":
        data.mkdir()
        Image.new("RGB", (4, 4)).save(data / "x.png")
    with pytest.raises(UsageError, match=message) as err:
        dc.scan(data)
    assert "\n" not in str(err.value)


def test_csv_paths_relative_to_the_csv(tmp_path):
    _folder(tmp_path / "img", {"x": 2, "y": 2})
    rows = ["path,label"] + [f"img/x/{i}.png,cat" for i in range(2)] + [f"img/y/{i}.png,dog" for i in range(2)]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    index = dc.scan(tmp_path / "train.csv")
    assert index.classes == ["cat", "dog"] and index.source == "csv"
    assert all(p.exists() for p in index.paths)


def test_val_with_other_classes_is_refused(tmp_path):
    train = dc.scan(_folder(tmp_path / "t", {"a": 2, "b": 2}))
    val = dc.scan(_folder(tmp_path / "v", {"a": 2, "c": 2}))
    with pytest.raises(UsageError, match="same classes"):
        dc.check_same_classes(train, val, tmp_path / "v")


def test_stratified_split_is_seeded_and_keeps_class_proportions():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    tr, va = dc.stratified_split(labels, fraction=0.2, seed=3)
    assert np.bincount(labels[va]).tolist() == [10, 6, 4]
    assert not set(tr) & set(va) and len(tr) + len(va) == 100
    tr2, va2 = dc.stratified_split(labels, fraction=0.2, seed=3)
    assert np.array_equal(va, va2)
    assert not np.array_equal(va, dc.stratified_split(labels, fraction=0.2, seed=4)[1])


def test_corrupt_files_are_skipped_and_counted(tmp_path):
    _folder(tmp_path, {"a": 3, "b": 3})
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG not really")
    index = dc.scan(tmp_path)
    pixels, ok, skipped = dc.decode_all(index.paths, size=(8, 8), channels=3, progress=False)
    assert pixels.shape == (7, 8, 8, 3) and pixels.dtype == np.uint8
    assert ok.sum() == 6 and len(skipped) == 1 and "broken.png" in skipped[0][0]


def test_class_weights_balance_the_classes():
    w = dc.class_weights(np.array([0] * 8 + [1] * 2), 2)
    np.testing.assert_allclose(w, [10 / 16, 10 / 4])
    np.testing.assert_allclose((w[np.array([0] * 8 + [1] * 2)]).reshape(-1)[[0, 9]] * [8, 2], [5, 5])


def test_augmenter_changes_pixels_but_keeps_shape_and_range():
    import tensorflow as tf

    fn = dc.augmenter("strong", seed=1, channels=3)
    x = tf.constant(np.random.default_rng(0).integers(0, 255, (4, 16, 16, 3)), tf.uint8)
    y = tf.zeros((4, 2))
    out, y2 = fn(x, y)
    assert out.shape == (4, 16, 16, 3) and out.dtype == tf.float32
    assert float(tf.reduce_min(out)) >= 0 and float(tf.reduce_max(out)) <= 255
    assert not np.allclose(out.numpy(), x.numpy().astype("float32"))
    assert dc.augmenter("none", seed=1, channels=3) is None
