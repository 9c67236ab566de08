"""zoo.explain and `zoo explain`: methods, peaks in original pixels, records, errors, sanity, neurons.

Most checks use a hand-built "red detector" whose evidence is known exactly: class "red" scores
the mean of ReLU(red - 0.5) over the image, so every method must peak on the one red patch of an
image, wherever the resize policy moves it; the model is nested inside another model, with its
preprocessing as a layer, as fine-tuned zoo models are.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

METHODS = ["gradcam", "gradcam++", "saliency", "smoothgrad", "integrated-gradients"]
SIZE = 32
# the red patch of the test images, in original pixels (x0, y0, x1, y1), on a 90 x 60 image
PATCH = (60, 12, 78, 30)


def red_detector(*, nested: bool = True, resize: str = "squash"):
    import keras

    from zoo.modeldir import attach_meta

    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255, name="preprocess")(inputs)
    conv = keras.layers.Conv2D(1, 1, activation="relu", name="block1_conv")
    x = conv(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    dense = keras.layers.Dense(2, activation="softmax", name="predictions")
    outputs = dense(x)
    model = keras.Model(inputs, outputs, name="red_detector")
    conv.set_weights([np.array([1.0, 0.0, 0.0], np.float32).reshape(1, 1, 3, 1), np.array([-0.5], np.float32)])
    dense.set_weights([np.array([[-100.0, 100.0]], np.float32), np.array([1.0, 0.0], np.float32)])
    if nested:
        outer_in = keras.Input((SIZE, SIZE, 3))
        model = keras.Model(outer_in, model(outer_in), name="wrapper")
    attach_meta(model, {"arch": "red_detector", "task": "classification", "labels": ["plain", "red"],
                        "input_shape": [SIZE, SIZE, 3], "preprocessing": {"resize": resize, "crop_pct": 0.8}})
    return model


def red_image(path: Path, size=(90, 60), patch=PATCH) -> Path:
    rng = np.random.default_rng(0)
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    pixels[..., 1:] = rng.integers(0, 200, (size[1], size[0], 2))
    pixels[..., 0] = rng.integers(0, 100, (size[1], size[0]))
    x0, y0, x1, y1 = patch
    pixels[y0:y1, x0:x1] = (255, 40, 40)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _inside(point, box) -> bool:
    return box[0] <= point[0] < box[2] and box[1] <= point[1] < box[3]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_peaks_on_the_evidence_in_original_pixels(tmp_path, method):
    import zoo

    image = red_image(tmp_path / "red.png")
    [record] = zoo.explain(image, model=red_detector(), method=method, save_dir=tmp_path / "out", save_raw=True,
                           samples=8, steps=8)
    assert record["ok"] and record["label"] == "red" and record["index"] == 1 and record["score"] > 0.5
    assert record["method"] == method
    assert _inside(record["peak"], PATCH), record["peak"]
    heatmap = Image.open(record["heatmap"])
    assert heatmap.size == (90, 60) and heatmap.mode == "RGB"
    raw = np.load(record["raw"])
    assert raw.shape == (60, 90) and raw.dtype == np.float32
    # the map holds its evidence on the patch: more there than anywhere else on average
    x0, y0, x1, y1 = PATCH
    inside = raw[y0:y1, x0:x1].mean()
    outside = (raw.sum() - raw[y0:y1, x0:x1].sum()) / (raw.size - (x1 - x0) * (y1 - y0))
    assert inside > 3 * outside
    assert ("layer" in record) == method.startswith("gradcam")


@pytest.mark.parametrize("resize", ["crop", "letterbox"])
def test_peak_undoes_crop_and_letterbox(tmp_path, resize):
    """A patch at the left edge survives a centre crop of a wide image only in part; one in the
    middle must map back to its original pixels under both policies."""
    import zoo

    patch = (36, 24, 54, 40)
    image = red_image(tmp_path / "red.png", size=(90, 60), patch=patch)
    for method in ("gradcam", "saliency"):
        [record] = zoo.explain(image, model=red_detector(resize=resize), method=method, return_maps=True)
        assert _inside(record["peak"], patch), (method, record["peak"])
        assert record["map"].shape == (60, 90) and record["heatmap"] is None


def test_target_label_and_index(tmp_path):
    import zoo

    image = red_image(tmp_path / "red.png")
    model = red_detector()
    top, by_label, by_index = (zoo.explain(image, model=model, target=t)[0] for t in ("top", "plain", 0))
    assert top["label"] == "red"
    assert by_label["label"] == by_index["label"] == "plain" and by_label["index"] == 0
    assert by_label["score"] == pytest.approx(1 - top["score"], abs=1e-5)


def test_default_layer_for_zoo_models_and_finetuned_directories(tmp_path):
    import zoo
    from zoo.explaining.layers import default_layer
    from zoo.modeldir import write_model_dir
    from zoo.training.freeze import replace_head

    expected = {("lenet5", (32, 32, 1)): "conv2", ("resnet18", (64, 64, 3)): "conv5_block2_out",
                ("yolo_lite", (64, 64, 3)): "conv6_leaky"}
    for (name, shape), layer in expected.items():
        assert default_layer(zoo.build(name, input_shape=shape)).name == layer, name
    # VGG ends its base with a pooling layer: Grad-CAM uses the finer map of the last conv before it
    assert default_layer(zoo.build("vgg11", input_shape=(64, 64, 3), include_top=False)).name == "block5_conv2"
    # a fine-tuned model directory: new head on the same base, saved and loaded again
    tuned = replace_head(zoo.build("resnet18", input_shape=(64, 64, 3)), 3)
    from zoo.modeldir import attach_meta

    attach_meta(tuned, {"arch": "resnet18", "task": "classification", "labels": ["a", "b", "c"],
                        "input_shape": [64, 64, 3]})
    out = write_model_dir(tuned, tmp_path / "run")
    assert default_layer(zoo.load_model(out)).name == "conv5_block2_out"
    [record] = zoo.explain(red_image(tmp_path / "red.png"), model=out)
    assert record["ok"] and record["label"] in {"a", "b", "c"} and record["layer"] == "conv5_block2_out"


@pytest.mark.slow
def test_gradcam_runs_on_every_zoo_classifier(tmp_path):
    """Every registry classifier, at the smallest input its head allows: the default layer is
    found and Grad-CAM gives a finite map at the image's size."""
    import keras

    import zoo
    from zoo.registry import REGISTRY

    image = red_image(tmp_path / "red.png")
    names = {"googlenet": "inception5b_concat", "densenet121": "relu", "alexnet": "conv5", "vgg16": "block5_conv3"}
    for name in zoo.list_models(task="classification"):
        spec = REGISTRY[name]
        fixed = spec.family in ("vgg", "alexnet", "lenet")  # dense heads of a fixed input size
        model = zoo.build(name, input_shape=spec.input_shape if fixed else (64, 64, 3), num_classes=4)
        [record] = zoo.explain(image, model=model, return_maps=True)
        assert record["ok"], (name, record)
        assert record["map"].shape == (60, 90) and np.isfinite(record["map"]).all(), name
        if name in names:
            assert record["layer"] == names[name], (name, record["layer"])
        del model
        keras.backend.clear_session()


def test_detection_explains_a_chosen_box(tmp_path):
    import zoo

    model = zoo.build("yolo_lite", input_shape=(64, 64, 3))
    image = red_image(tmp_path / "red.png")
    records = zoo.explain([image, image], model=model, conf=0.0, max_det=3, box=1, save_dir=tmp_path / "out")
    predicted = zoo.predict(image, model=model, conf=0.0, max_det=3)[0]["detections"]
    for record in records:
        assert record["ok"], record
        assert record["box_index"] == 1 and record["box"] == predicted[1]["box"]
        assert record["label"] == predicted[1]["label"] and record["score"] == predicted[1]["score"]
        assert 0 <= record["peak"][0] < 90 and 0 <= record["peak"][1] < 60
        assert Image.open(record["heatmap"]).size == (90, 60)
    [missing] = zoo.explain(image, model=model, conf=0.0, max_det=3, box=5)
    assert missing["ok"] is False and "no detection #5" in missing["error"]


# --- the command line ---


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from zoo.modeldir import write_model_dir

    return write_model_dir(red_detector(), tmp_path_factory.mktemp("run") / "red")


def _run(*args):
    from zoo.cli import cli

    return CliRunner().invoke(cli, ["explain", *map(str, args)], catch_exceptions=False)


def test_cli_jsonl_records_in_order_bad_inputs_exit_1(tmp_path, model_dir):
    images = tmp_path / "imgs"
    red_image(images / "a.png")
    (images / "b.jpg").write_text("not an image")
    red_image(images / "c.png", size=(40, 70), patch=(5, 40, 25, 60))
    result = _run(images, tmp_path / "missing.png", "--model", model_dir, "--format", "jsonl",
                  "--save-dir", tmp_path / "out", "--batch-size", "2")
    assert result.exit_code == 1, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(r["source"]).name for r in records] == ["a.png", "b.jpg", "c.png", "missing.png"]
    assert [r["ok"] for r in records] == [True, False, True, False]
    for record, patch, size in ((records[0], PATCH, (90, 60)), (records[2], (5, 40, 25, 60), (40, 70))):
        assert set(record) == {"source", "ok", "label", "index", "score", "method", "peak", "heatmap", "layer"}
        assert _inside(record["peak"], patch) and Image.open(record["heatmap"]).size == size
    assert records[1]["error"] and records[3]["error"]


def test_cli_table_and_usage_errors(tmp_path, model_dir):
    image = red_image(tmp_path / "red.png")
    result = _run(image, "--model", model_dir, "--format", "table", "--save-dir", tmp_path / "out")
    assert result.exit_code == 0 and "red.png" in result.stdout and "red" in result.stdout
    for args in (["--target", "blue"], ["--layer", "block9_conv"], ["--box", "-1"], ["--neurons", "block1_conv:7"]):
        result = _run(*([] if args[0] == "--neurons" else [image]), "--model", model_dir, *args,
                      "--save-dir", tmp_path / "out")
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert _run(image, "--model", model_dir, "--method", "lime").exit_code == 2
    result = _run("--model", model_dir)
    assert result.exit_code == 2 and "SOURCE" in result.stderr


def test_segmentation_models_are_refused(tmp_path):
    import keras

    import zoo
    from zoo.errors import UsageError
    from zoo.modeldir import attach_meta

    inputs = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
    attach_meta(model, {"task": "segmentation", "input_shape": [SIZE, SIZE, 3]})
    with pytest.raises(UsageError, match="classifiers and detection"):
        zoo.explain(red_image(tmp_path / "red.png"), model=model)


# --- sanity check ---


def test_spearman_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    from zoo.explaining.sanity import spearman

    rng = np.random.default_rng(0)
    a = np.maximum(rng.normal(size=(20, 20)), 0)  # many tied zeros, as a ReLU'd CAM
    b = np.maximum(a + rng.normal(scale=0.5, size=a.shape), 0)
    assert spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic, abs=1e-9)
    assert spearman(a, np.zeros_like(a)) is None


def test_randomised_restores_the_trained_weights():
    from zoo.explaining.sanity import randomised

    model = red_detector()
    before = [w.copy() for w in model.get_weights()]
    with randomised(model) as names:
        assert set(names) == {"block1_conv", "predictions"}
        assert not all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_sanity_verdict_and_exit_status(tmp_path, model_dir):
    """The verdict line and exit status, with thresholds that decide it either way (whether a
    method passes on a trained model is measured in test_explain_pointing.py)."""
    image = red_image(tmp_path / "red.png")
    result = _run(image, "--model", model_dir, "--method", "saliency", "--sanity", "--format", "jsonl",
                  "--save-dir", tmp_path / "out", "--sanity-threshold", "-1.5")
    assert result.exit_code == 1, result.output
    assert "sanity check FAILED for saliency" in result.stderr
    record = json.loads(result.stdout.splitlines()[0])
    assert record["ok"] and -1.0 <= record["sanity"] <= 1.0
    passed = _run(image, "--model", model_dir, "--method", "saliency", "--sanity", "--format", "jsonl",
                  "--save-dir", tmp_path / "out", "--sanity-threshold", "1.5")
    assert passed.exit_code == 0 and "sanity check passed for saliency" in passed.stderr


# --- what neurons see ---


def test_neurons_maximise_the_channel(tmp_path, model_dir):
    import zoo
    from zoo.explaining.neurons import Regularisers, visualize_neurons

    model = zoo.load_model(model_dir)
    from zoo.modeldir import get_meta

    images, channels, values = visualize_neurons(model, get_meta(model), "block1_conv", [0],
                                                 reg=Regularisers(steps=40))
    [image] = images
    assert channels == [0] and image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
    # the channel is ReLU(red - 0.5): its image must turn red, and the activation be positive
    assert image[..., 0].mean() > image[..., 1].mean() + 60 and values[0] > 0.2
    result = _run("--model", model_dir, "--neurons", "block1_conv:0", "--steps", "5", "--format", "jsonl",
                  "--save-dir", tmp_path / "out")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["layer"] == "block1_conv" and record["channels"] == [0]
    assert Image.open(record["grid"]).size[0] >= 128


def test_parse_neurons():
    from zoo.errors import UsageError
    from zoo.explaining.neurons import parse_neurons

    assert parse_neurons("conv5_block2_out") == ("conv5_block2_out", None)
    assert parse_neurons("conv5_block2_out:0-2,7") == ("conv5_block2_out", [0, 1, 2, 7])
    with pytest.raises(UsageError):
        parse_neurons("conv5:a-b")


def test_dream_writes_the_original_size(tmp_path, model_dir):
    image = red_image(tmp_path / "red.png")
    result = _run(image, tmp_path / "missing.png", "--model", model_dir, "--dream", "--layer", "block1_conv",
                  "--steps", "6", "--format", "jsonl", "--save-dir", tmp_path / "out")
    assert result.exit_code == 1, result.output
    good, bad = (json.loads(line) for line in result.stdout.splitlines())
    assert good["ok"] and not bad["ok"]
    dreamed = np.asarray(Image.open(good["image"]))
    assert dreamed.shape == (60, 90, 3)
    assert np.abs(dreamed.astype(int) - np.asarray(Image.open(image)).astype(int)).mean() > 1.0


# --- where the peak is ---


def test_peak_of_a_coarse_map_is_a_cell_centre_or_between_cells():
    from zoo.explaining.render import peak

    square = {"orig_size": (128, 128), "scale": (1.0, 1.0)}
    corner = np.zeros((4, 4), np.float32)
    corner[0, 0] = 1.0  # evidence in the top-left cell: its centre (15.5, 15.5), not the image corner
    x, y = peak(corner, square, (128, 128))
    assert 12 <= x <= 20 and 12 <= y <= 20, (x, y)
    pair = np.zeros((4, 4), np.float32)
    pair[1, 1] = pair[1, 2] = 1.0  # two equal cells side by side: between them
    x, y = peak(pair, square, (128, 128))
    assert 56 <= x <= 72 and 40 <= y <= 56, (x, y)


def test_peak_skips_letterbox_padding():
    from zoo.data.images import resize_for_model
    from zoo.explaining.render import peak

    _, info = resize_for_model(np.zeros((100, 200, 3), np.uint8), (64, 64), resize="letterbox")
    values = np.zeros((64, 64), np.float32)
    values[5, 10] = 2.0  # in the grey padding above the image: not evidence about the image
    values[40, 50] = 1.0  # input (50, 40) is original (156, 75)
    x, y = peak(values, info, (64, 64))
    assert abs(x - 156) <= 2 and abs(y - 75) <= 2, (x, y)
