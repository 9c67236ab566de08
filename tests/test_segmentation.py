"""Segmentation: loss and metrics (ignore label, keras MeanIoU / sklearn agreement), data layouts and
their errors, paired augmentation, and the predict side (masks at the original size, overlays)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import script_module

from zoo.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    return script_module("make_shapes_segmentation")


# --------------------------------------------------------------------------- loss and metrics


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_loss_ignores_255_and_class_weights_follow_the_masks():
    import tensorflow as tf

    from zoo.tasks.segmentation import TASK
    from zoo.tasks.segmentation.augment import batch_hook
    from zoo.tasks.segmentation.loss import normalise_class_weights
    from zoo.training.options import TrainOptions
    from zoo.training.task import TaskData

    rng = np.random.default_rng(0)
    probs = _softmax(rng.normal(size=(2, 5, 6, 3))).astype("float32")
    truth = rng.integers(0, 3, size=(2, 5, 6))
    truth[0, :2] = 255
    valid = truth != 255
    ce = -np.log(np.take_along_axis(probs, np.where(valid, truth, 0)[..., None], -1)[..., 0])
    fn = TASK.loss(TaskData(None, None, ["a", "b", "c"]), TrainOptions())
    value = float(fn(truth, probs))
    np.testing.assert_allclose(value, ce[valid].mean(), rtol=1e-5)
    # What the model says on ignored pixels changes nothing, and gets no gradient.
    other = probs.copy()
    other[0, :2] = _softmax(rng.normal(size=(2, 6, 3)))
    np.testing.assert_allclose(float(fn(truth, other)), value, rtol=1e-6)
    p = tf.Variable(probs)
    with tf.GradientTape() as tape:
        out = fn(truth, p)
    grad = tape.gradient(out, p).numpy()
    assert np.all(grad[0, :2] == 0) and np.abs(grad[valid]).sum() > 0
    # Class weights: per-pixel sample weights from the (augmented) masks, 0 where ignored, and
    # normalised to mean 1 over the training pixels.
    counts = np.array([60, 30, 10])
    w = normalise_class_weights([1.0, 2.0, 4.0], counts)
    np.testing.assert_allclose((w * counts).sum() / counts.sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(w[1] / w[0], 2.0, rtol=1e-6)
    images = np.zeros((2, 5, 6, 3), "float32")
    x, y, sw = (t.numpy() for t in batch_hook(None, w)(tf.constant(images), tf.constant(truth)))
    np.testing.assert_array_equal(sw, np.where(valid, w[np.where(valid, truth, 0)], 0))
    np.testing.assert_allclose(float(fn(truth, probs, sample_weight=sw)), (sw * ce).sum() / valid.sum(), rtol=1e-5)


def test_confusion_matrix_agrees_with_keras_meaniou_and_sklearn():
    from sklearn.metrics import jaccard_score

    from zoo.tasks.segmentation.metrics import ConfusionMatrix, mean_iou_metric

    rng = np.random.default_rng(1)
    k = 5
    truth = rng.integers(0, k - 1, size=(3, 16, 16))  # class 4 never in truth...
    truth[:, :3] = 255
    pred = rng.integers(0, k - 1, size=(3, 16, 16))  # ...nor predicted: it must not count in the mean
    pred[0, 5, 5] = 3
    cm = ConfusionMatrix(k)
    cm.update(truth, pred)
    scores = cm.scores()
    valid = truth != 255
    ref = jaccard_score(truth[valid], pred[valid], labels=list(range(k - 1)), average=None)
    np.testing.assert_allclose([scores["per_class_iou"][str(i)] for i in range(k - 1)], ref, rtol=1e-5)
    assert scores["per_class_iou"]["4"] is None
    np.testing.assert_allclose(scores["miou"], ref.mean(), rtol=1e-6)
    np.testing.assert_allclose(scores["pixel_accuracy"], (truth[valid] == pred[valid]).mean())
    assert scores["pixels"] == int(valid.sum())
    metric = mean_iou_metric(k)
    metric.update_state(truth, np.eye(k, dtype="float32")[pred])  # one-hot "probabilities"
    np.testing.assert_allclose(float(metric.result()), scores["miou"], rtol=1e-5)


# --------------------------------------------------------------------------- options and weights


def test_options_are_parsed_once_into_a_frozen_validated_dataclass():
    import dataclasses

    from zoo.tasks.segmentation import TASK, SegmentationOptions
    from zoo.training.task import Task, get_task

    assert get_task("segmentation") is TASK and isinstance(TASK, Task) and TASK.options_class is SegmentationOptions
    opts = TASK.parse_options({"skip_bad": "1", "class_weights": "1,2,0.5", "head_channels": "64", "dropout": "0",
                               "backbone_weights": "none"})
    assert opts == SegmentationOptions(skip_bad=True, class_weights=(1.0, 2.0, 0.5), head_channels=64, dropout=0.0)
    assert TASK.parse_options(None) == SegmentationOptions(skip_bad=False, class_weights="none")
    assert TASK.parse_options({"class_weights": "Median"}).class_weights == "median"
    assert TASK.parse_options({"class_weights": "auto"}).class_weights == "none"
    assert TASK.parse_options({"skip_bad": 1, "class_weights": [1, 2]}) == SegmentationOptions(True, (1.0, 2.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.skip_bad = False
    for raw, message in [({"skip_bad": "maybe"}, "skip_bad"), ({"skip_bad": 2}, "skip_bad"),
                         ({"class_weights": "lots"}, "'none', 'median' or one number per class"),
                         ({"class_weights": "1,-1"}, "non-negative"), ({"head_channels": "0"}, "head_channels"),
                         ({"head_kernel": 2.5}, "head_kernel"), ({"dropout": "1"}, r"\[0, 1\)"),
                         ({"colour": "red"}, "colour.*Valid: backbone_weights, class_weights")]:
        with pytest.raises(UsageError, match=message):
            TASK.parse_options(raw)


def test_class_weight_table_needs_one_weight_per_class():
    from zoo.tasks.segmentation.loss import class_weight_table

    counts = np.array([60, 30, 10])
    assert class_weight_table("none", counts) is None
    median = class_weight_table("median", counts)
    assert median[2] > median[1] > median[0] and (median * counts).sum() / counts.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(class_weight_table((1.0, 1.0, 1.0), counts), 1.0)
    with pytest.raises(UsageError, match="needs 3 numbers .* Received 2"):
        class_weight_table((1.0, 2.0), counts)


def test_default_backbone_weights_follow_the_one_rule(tmp_path):
    from zoo.registry import default_weights
    from zoo.tasks.segmentation.train import choose_weights

    own = default_weights("fcn8s")
    for backbone in ("vgg16", "resnet18"):
        assert choose_weights("fcn8s", backbone, "auto", None) == (own, None if own else default_weights(backbone))
    assert choose_weights("fcn8s", "resnet18", "auto", "tv_in1k") == (own, "tv_in1k")
    assert choose_weights("fcn8s", "resnet18", "tv_in1k", None) == (None, "tv_in1k")  # a tag of the backbone
    assert choose_weights("fcn8s", "resnet18", "none", None) == choose_weights("fcn8s", "resnet18", None, None) == (None, None)
    assert choose_weights("fcn8s", "vgg16", None, "imagenet") == (None, "imagenet")
    path = tmp_path / "fcn8s.weights.h5"
    path.write_bytes(b"")
    assert choose_weights("fcn8s", "vgg16", str(path), None) == (str(path), None)  # a file holds the whole FCN


# --------------------------------------------------------------------------- data


def _write(path: Path, array: np.ndarray, mode: str | None = None):
    from PIL import Image

    from zoo.tasks.segmentation.masks import voc_palette

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    if mode == "P":
        image = image.convert("L").convert("P")
        image.putdata(list(array.reshape(-1)))
        image.putpalette(voc_palette().reshape(-1).tolist())
    image.save(path)


def _pool(root: Path, n: int = 3, size=(12, 10), classes=("bg", "thing")) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        _write(root / "images" / f"im{i}.jpg", rng.integers(0, 255, size=(*size, 3), dtype=np.uint8))
        mask = np.zeros(size, np.uint8)
        mask[2:6, 3:7] = 1
        mask[0, 0] = 255
        _write(root / "masks" / f"im{i}.png", mask, "P")
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    return root


def test_read_mask_palette_gray_and_rgb(tmp_path):
    from zoo.tasks.segmentation.masks import read_mask, voc_palette, write_mask

    mask = np.array([[0, 1, 2], [15, 255, 20]], np.uint8)
    write_mask(tmp_path / "p.png", mask)
    np.testing.assert_array_equal(read_mask(tmp_path / "p.png"), mask)
    _write(tmp_path / "l.png", mask)
    np.testing.assert_array_equal(read_mask(tmp_path / "l.png"), mask)
    _write(tmp_path / "rgb.png", voc_palette()[mask])  # colour-coded VOC mask saved as RGB
    np.testing.assert_array_equal(read_mask(tmp_path / "rgb.png"), mask)
    _write(tmp_path / "odd.png", np.full((2, 2, 3), (1, 2, 3), np.uint8))
    with pytest.raises(UsageError, match="odd.png"):
        read_mask(tmp_path / "odd.png")
    # The VOC colour map: 1 = aeroplane (128, 0, 0), 15 = person (192, 128, 128).
    assert tuple(voc_palette()[1]) == (128, 0, 0) and tuple(voc_palette()[15]) == (192, 128, 128)


def test_layouts_and_class_names(tmp_path):
    from zoo.tasks.segmentation.data import find_layout
    from zoo.tasks.segmentation.masks import VOC_CLASSES

    layout = find_layout(_pool(tmp_path / "pool"))
    assert layout.kind == "pool" and layout.labels == ["bg", "thing"] and len(layout.train.images) == 3
    for split in ("train", "val"):
        _pool(tmp_path / "splits" / split)
    (tmp_path / "splits" / "classes.txt").write_text("bg\nthing\n")
    layout = find_layout(tmp_path / "splits")
    assert layout.kind == "splits" and len(layout.val.images) == 3
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    _pool(tmp_path / "tmp")
    (voc / "JPEGImages").mkdir(parents=True)
    (voc / "SegmentationClass").mkdir()
    (voc / "ImageSets" / "Segmentation").mkdir(parents=True)
    for i in range(3):
        (tmp_path / "tmp" / "images" / f"im{i}.jpg").rename(voc / "JPEGImages" / f"im{i}.jpg")
        (tmp_path / "tmp" / "masks" / f"im{i}.png").rename(voc / "SegmentationClass" / f"im{i}.png")
    (voc / "ImageSets" / "Segmentation" / "train.txt").write_text("im0\nim1\n")
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("im2\n")
    layout = find_layout(tmp_path)
    assert layout.kind == "voc" and layout.labels == list(VOC_CLASSES)
    assert [p.name for p in layout.train.images] == ["im0.jpg", "im1.jpg"] and len(layout.val.images) == 1


def test_bad_pairs_name_the_file_or_are_skipped_and_counted(tmp_path):
    from zoo.tasks.segmentation.data import decode_pairs, find_layout

    root = _pool(tmp_path / "d", n=4)
    _write(root / "images" / "lonely.png", np.zeros((12, 10, 3), np.uint8))
    with pytest.raises(UsageError, match="lonely.png has no mask"):
        find_layout(root)
    layout = find_layout(root, skip_bad=True)
    assert len(layout.train.images) == 4 and layout.train.skipped == [(str(root / "images" / "lonely.png"), "no mask")]
    _write(root / "masks" / "im1.png", np.zeros((5, 5), np.uint8), "P")  # wrong size
    bad = np.zeros((12, 10), np.uint8)
    bad[3, 3] = 7  # beyond the 2 classes of classes.txt
    _write(root / "masks" / "im2.png", bad, "P")
    with pytest.raises(UsageError, match=r"im1\.png is 5x5 but its image .*im1\.jpg is 10x12"):
        decode_pairs(layout.train, size=(8, 8), num_classes=2)
    layout.train.images.pop(1), layout.train.masks.pop(1)
    with pytest.raises(UsageError, match=r"im2\.png has value\(s\) 7 but there are 2 classes"):
        decode_pairs(layout.train, size=(8, 8), num_classes=2)
    layout = find_layout(root, skip_bad=True)
    images, masks, skipped = decode_pairs(layout.train, size=(8, 8), num_classes=2, skip_bad=True)
    assert images.shape == (2, 8, 8, 3) and masks.shape == (2, 8, 8)
    assert len(skipped) == 3 and {Path(p).name for p, _ in skipped} == {"lonely.png", "im1.jpg", "im2.jpg"}
    assert set(np.unique(masks)) == {0, 1, 255}  # nearest resize keeps labels exact


def test_augmentation_moves_image_and_mask_together():
    import tensorflow as tf

    from zoo.tasks.segmentation.augment import augmenter

    rng = np.random.default_rng(0)
    masks = np.zeros((8, 32, 32), np.int32)
    for m in masks:
        y, x = rng.integers(0, 20, 2)
        m[y:y + 12, x:x + 12] = 1
        m[:4, :] = 2
    images = (masks[..., None] * np.array([80.0, 80.0, 80.0]) + 40).astype("float32")  # colour encodes class
    augment = augmenter("strong", seed=3)
    changed = zoomed_out = 0
    for _ in range(4):
        x, y = (t.numpy() for t in augment(tf.constant(images), tf.constant(masks)))
        assert x.shape == images.shape and y.shape == masks.shape and y.dtype == masks.dtype
        changed += int((y != masks).any())
        zoomed_out += int((y == 255).any())
        for xi, yi in zip(x, y):
            valid = yi != 255
            # Colour jitter is one affine map per image: fit it on the class means, then the
            # image's class must be the mask's class everywhere but at borders (bilinear vs nearest).
            means = [xi[..., 0][yi == k].mean() for k in range(3) if (yi == k).any()]
            ks = [k for k in range(3) if (yi == k).any()]
            if len(ks) < 2:
                continue
            gain, offset = np.polyfit(ks, means, 1)
            inferred = np.round((xi[..., 0] - offset) / gain)
            assert (inferred[valid] != yi[valid]).mean() < 0.1
    assert changed and zoomed_out
    assert augmenter("none") is None


def test_generator_is_seeded_and_masks_are_exact(tmp_path):
    from zoo.tasks.segmentation.masks import read_mask

    gen = _generator()
    a = gen.make_shapes(tmp_path / "a", images=3, size=40, seed=5)
    b = gen.make_shapes(tmp_path / "b", images=3, size=40, seed=5)
    for name in ("images/000001.png", "masks/000001.png"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "classes.txt").read_text().split() == ["background", "square", "circle", "triangle"]
    rng = np.random.default_rng(0)
    image, mask = gen.draw_pair(rng, size=64, max_objects=1)
    assert set(np.unique(mask)) <= {0, 1, 2, 3} and (mask > 0).sum() > 100
    # One shape of one colour: inside and outside the mask are two flat colours (plus +-12 noise).
    inside, outside = image[mask > 0].astype(int), image[mask == 0].astype(int)
    assert np.ptp(inside, axis=0).max() <= 24 and np.ptp(outside, axis=0).max() <= 24
    np.testing.assert_array_equal(read_mask(a / "masks" / "000000.png").shape, (40, 40))


# --------------------------------------------------------------------------- predict side


def test_postprocess_gives_masks_at_the_original_size(tmp_path, monkeypatch):
    import tempfile

    from PIL import Image

    from zoo.tasks.segmentation import TASK
    from zoo.tasks.segmentation.masks import read_mask, voc_palette

    meta = {"labels": ["background", "square", "circle"], "input_shape": [8, 8, 3]}
    image = np.zeros((30, 50, 3), np.uint8)
    array, info = TASK.prepare(image, meta)
    assert array.shape == (8, 8, 3) and info["orig_size"] == (30, 50)
    scores = np.zeros((2, 8, 8, 3), np.float32)
    scores[..., 0] = 1
    scores[0, :, 4:, 1] = 2  # right half: square
    scores[1, :2, :, 2] = 2  # top quarter: circle
    options: dict = {"save_dir": None}
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    recs = TASK.postprocess(scores, [info, {"orig_size": (5, 7)}], meta, options)
    # Without a save dir: one fresh temporary folder per run (under TMPDIR), one file per image.
    folder = Path(recs[0]["mask"]).parent
    assert folder.parent == tmp_path / "tmp" and folder.name.startswith("zoo-masks-")
    assert Path(recs[1]["mask"]).parent == folder and recs[0]["mask"] != recs[1]["mask"]
    later = TASK.postprocess(scores[:1], [info], meta, options)[0]["mask"]  # the same run's next batch
    assert Path(later).parent == folder and later not in (recs[0]["mask"], recs[1]["mask"])
    assert Path(TASK.postprocess(scores[:1], [info], meta, {"save_dir": None})[0]["mask"]).parent != folder  # a new run
    m0 = read_mask(recs[0]["mask"])
    assert m0.shape == (30, 50) and (m0[:, :25] == 0).all() and (m0[:, 25:] == 1).all()
    assert recs[0]["classes"] == {"background": 0.5, "square": 0.5}
    assert read_mask(recs[1]["mask"]).shape == (5, 7) and set(recs[1]["classes"]) == {"background", "circle"}
    assert abs(sum(recs[1]["classes"].values()) - 1) < 1e-6
    with Image.open(recs[0]["mask"]) as png:
        assert png.mode == "P" and png.getpalette()[3:6] == list(voc_palette()[1])
    # With a save dir: <stem>_mask.png and <stem>_overlay.png next to it.
    out = tmp_path / "out"
    out.mkdir()
    options = {"save_dir": out}
    rec = {"source": "dir/cat.jpg", "ok": True, **TASK.postprocess(scores[:1], [info], meta, options)[0]}
    TASK.save(rec, image + 50, meta, out)
    assert rec["mask"] == str(out / "cat_mask.png") and (out / "cat_overlay.png").exists()
    assert sorted(p.name for p in out.iterdir()) == ["cat_mask.png", "cat_overlay.png"]
    with Image.open(out / "cat_overlay.png") as png:
        overlay = np.asarray(png.convert("RGB"))
    assert overlay.shape[0] >= 30 and (overlay[-1, -1] != overlay[-1, 0]).any()  # right half tinted


def test_finetune_cli_names_the_bad_file_exit_2(tmp_path):
    from helpers import zoo_cli

    root = _pool(tmp_path / "d", n=2)
    _write(root / "images" / "lonely.png", np.zeros((12, 10, 3), np.uint8))
    result = zoo_cli("finetune", "fcn8s", str(root), "--out", str(tmp_path / "out"), "--backbone", "resnet18")
    assert result.returncode == 2, result.stderr
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "lonely.png has no mask" in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_scores_to_mask_one_class_at_a_time_equals_the_full_argmax():
    """12 MP x 21 classes used to be held whole (2.7 GB); the streamed argmax must give the same mask."""
    from PIL import Image

    from zoo.tasks.segmentation.predict import scores_to_mask

    rng = np.random.default_rng(3)
    scores = rng.normal(size=(7, 9, 21)).astype(np.float32)
    scores[:, :, 4] = scores[:, :, 2]  # ties go to the lower class, as argmax
    size = (31, 45)
    full = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(scores[:, :, c]), mode="F")
                                .resize((size[1], size[0]), Image.Resampling.BILINEAR)) for c in range(21)], -1)
    np.testing.assert_array_equal(scores_to_mask(scores, size), full.argmax(-1).astype(np.uint8))
