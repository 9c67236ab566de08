"""Hostile model directories and pixel limits: metadata.json is a capped regular file whose input_shape is
within the pixel limit and equal to the model's; --max-pixels / ZOO_MAX_PIXELS are validated; a crop
resize never builds a gigapixel intermediate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from helpers import zoo_cli
from zoo.errors import UsageError
from zoo.modeldir import META_FILE


@pytest.fixture(scope="module")
def lenet_dir(tmp_path_factory):
    import zoo
    from zoo.modeldir import write_model_dir

    out = tmp_path_factory.mktemp("lenet_dir") / "model"
    write_model_dir(zoo.build("lenet5", weights=None), out)
    return out


def _copy(lenet_dir, tmp_path):
    target = tmp_path / "m"
    shutil.copytree(lenet_dir, target)
    return target


def _patch(target, **patch):
    meta = json.loads((target / META_FILE).read_text())
    (target / META_FILE).write_text(json.dumps({**meta, **patch}))


def test_metadata_input_shape_65536_squared_is_refused(lenet_dir, tmp_path):
    from zoo.modeldir import read_meta

    target = _copy(lenet_dir, tmp_path)
    _patch(target, input_shape=[65536, 65536, 1])
    with pytest.raises(UsageError, match="pixel limit"):
        read_meta(target)


def test_metadata_input_shape_different_from_the_model_is_one_line(lenet_dir, tmp_path):
    import zoo

    target = _copy(lenet_dir, tmp_path)
    _patch(target, input_shape=[64, 64, 1])
    with pytest.raises(UsageError, match="the model takes"):
        zoo.load_model(target)
    result = zoo_cli("predict", str(tmp_path), "--model", str(target))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_metadata_sparse_512mb_file_is_refused_without_reading(lenet_dir, tmp_path):
    from zoo.modeldir import read_meta

    target = _copy(lenet_dir, tmp_path)
    with open(target / META_FILE, "r+b") as fh:
        fh.truncate(512 << 20)
    with pytest.raises(UsageError, match="at most"):
        read_meta(target)


@pytest.mark.parametrize("kind", ["dev_zero", "fifo", "link_outside"])
def test_metadata_symlink_to_dev_zero_or_fifo_is_refused_without_hanging(lenet_dir, tmp_path, kind):
    from zoo.modeldir import read_meta

    target = _copy(lenet_dir, tmp_path)
    (target / META_FILE).unlink()
    if kind == "dev_zero":
        os.symlink("/dev/zero", target / META_FILE)
    elif kind == "fifo":
        os.mkfifo(target / META_FILE)
    else:
        (tmp_path / "outside.json").write_text("{}")
        os.symlink(tmp_path / "outside.json", target / META_FILE)
    with pytest.raises(UsageError, match="regular file"):
        read_meta(target)


@pytest.mark.parametrize("value", ["-1", "inf", "1.5", "nan", "lots"])
def test_zoo_max_pixels_negative_or_not_an_integer_is_a_usage_error(monkeypatch, value):
    from zoo.data.images import max_pixels_limit

    monkeypatch.setenv("ZOO_MAX_PIXELS", value)
    with pytest.raises(UsageError, match="ZOO_MAX_PIXELS"):
        max_pixels_limit()


def test_max_pixels_minus_one_is_a_usage_error_not_off(tmp_path):
    from zoo.data.images import max_pixels_limit

    with pytest.raises(UsageError, match="--max-pixels"):
        max_pixels_limit(-1)
    assert max_pixels_limit(0) is None and max_pixels_limit(10) == 10
    result = zoo_cli("predict", str(tmp_path), "--model", "lenet5", "--max-pixels", "-1")
    assert result.returncode == 2 and "--max-pixels" in result.stderr, result.stderr
    result = zoo_cli("predict", str(tmp_path), "--model", "lenet5", env={"ZOO_MAX_PIXELS": "inf"})
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr


CROP_RSS = """
import numpy as np
from zoo.benchmark import peak_rss_mb
from zoo.data.images import resize_for_model
image = np.full((1, 1_000_000, 3), 200, np.uint8)
out, info = resize_for_model(image, (224, 224), resize="crop", crop_pct=0.875)
assert out.shape == (224, 224, 3), out.shape
print(int(peak_rss_mb()))
"""


def test_crop_resize_of_a_1_by_1000000_png_stays_small():
    """The scaled intermediate of a crop would be 256 x 256,000,000 px (3.2 GB peak before)."""
    result = subprocess.run([sys.executable, "-c", CROP_RSS], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) < 400  # MiB: Python + numpy + Pillow + a 3 MB image


def test_crop_through_the_box_path_matches_resize_then_crop():
    from PIL import Image

    from zoo.data.images import resize_for_model

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (3, 4000, 3), np.uint8)  # 1:1333, takes the box path
    out, info = resize_for_model(image, (16, 16), resize="crop")
    nh, nw = round(info["scale"][0] * 3), round(info["scale"][1] * 4000)
    top, left = info["crop"]
    ref = np.asarray(Image.fromarray(image).resize((nw, nh), Image.Resampling.BILINEAR)
                     .crop((left, top, left + 16, top + 16)))
    assert np.abs(out.astype(int) - ref.astype(int)).mean() < 2.0


def test_task_segmentation_on_a_classifier_is_one_line(lenet_dir, tmp_path):
    import zoo
    from PIL import Image

    target = _copy(lenet_dir, tmp_path)
    _patch(target, task="segmentation")
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(image)
    with pytest.raises(UsageError, match="fix `task`"):
        zoo.predict([str(image)], model=target)
    result = zoo_cli("predict", str(image), "--model", str(target), "--format", "jsonl")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
