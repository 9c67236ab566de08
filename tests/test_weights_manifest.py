"""The weights manifest: every shipped row holds to its schema and to the model it builds; user
manifests (ZOO_MANIFEST) are validated with errors that name the file, the row and the field."""

from __future__ import annotations

import pytest

from zoo.errors import UsageError
from zoo.pretrained import manifest
from zoo.registry import REGISTRY

GOOD = """
[resnet18.mine]
format = "safetensors"
urls = ["https://example.org/r18.safetensors"]
sha256 = "%s"
classes = 5
labels = "fashion_mnist"
input_size = [224, 224, 3]
preprocessing = { mode = "torch", mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225] }
licence = "MIT"
source = "my training run"
""" % ("ab" * 32)


def _write(tmp_path, text, monkeypatch, name="m.toml"):
    path = tmp_path / name
    path.write_text(text)
    monkeypatch.setenv("ZOO_MANIFEST", str(path))
    return path


def test_every_shipped_row_fits_its_registry_model():
    rows = manifest.rows()
    assert {"lenet5.fashion_mnist", "vgg16.imagenet", "resnet50.imagenet", "densenet201.imagenet",
            "resnet50.tv_in1k", "alexnet.tv_in1k", "googlenet.tv_in1k", "vgg19_bn.tv_in1k"} <= set(rows)
    for key, row in rows.items():
        spec = REGISTRY[row["arch"]]
        assert row["classes"] == spec.classes, key
        assert tuple(row["input_size"]) == spec.input_shape, key
        labels = manifest.read_labels(row["labels"])
        assert labels is not None and len(labels) == row["classes"], key
        for part in (row, row.get("notop") or {}):
            assert all(u.startswith("https://") for u in part.get("urls", [])), key
        if row["format"] == "keras_legacy_h5":
            assert row["md5"] and row["notop"]["md5"] and row["md5"] != row["notop"]["md5"], key
        if row["tag"].startswith("tv"):
            filename = row["urls"][0].rsplit("/", 1)[-1]
            assert f"-{row['sha256_prefix']}." in filename, key  # torchvision's hash-in-filename convention


def test_keras_and_torchvision_rows_choose_their_resnet_style_and_preprocessing():
    keras_row, tv_row = manifest.get_row("resnet50", "imagenet"), manifest.get_row("resnet50", "tv_in1k")
    assert keras_row["arch_options"] == {"style": "keras"} and keras_row["preprocessing"]["mode"] == "caffe"
    assert keras_row["preprocessing"]["channel_order"] == "bgr"
    assert tv_row["arch_options"] == {"style": "torchvision"} and tv_row["preprocessing"]["mode"] == "torch"
    assert manifest.get_row("densenet121", "imagenet")["preprocessing"]["mode"] == "torch"  # keras DenseNet: torch mode


def test_presets_agree_with_the_models_preprocessing_layer():
    from zoo.models.common import PREPROCESSING as model_presets
    from zoo.pretrained.presets import PREPROCESSING

    for mode in ("torch", "caffe", "tf", "unit"):
        for key in ("scale", "mean", "std", "channel_order"):
            assert PREPROCESSING[mode][key] == model_presets[mode][key], (mode, key)


def test_user_manifest_adds_rows(tmp_path, monkeypatch):
    _write(tmp_path, GOOD, monkeypatch)
    assert "mine" in manifest.tags_for("resnet18")
    assert manifest.get_row("resnet18", "mine")["manifest"] == str(tmp_path / "m.toml")


@pytest.mark.parametrize("change, message", [
    (('format = "safetensors"', 'format = "onnx"'), "`format` must be one of"),
    (('sha256 = "' + "ab" * 32 + '"', 'sha256 = "abc"'), "64 lower-case hex"),
    (('sha256 = "' + "ab" * 32 + '"', ''), "needs a checksum"),
    (('classes = 5', 'classes = "five"'), "`classes` must be of type int"),
    (('input_size = [224, 224, 3]', 'input_size = [224, 224]'), "[H, W, C]"),
    (('mean = [0.485, 0.456, 0.406]', 'mean = [0.5, 0.5]'), "must list 3 numbers"),
    (('licence = "MIT"', ''), "missing required field `licence`"),
    (('source = "my training run"', 'source = "x"\ncolour = "red"'), "unknown field `colour`"),
    (('urls = ["https://example.org/r18.safetensors"]', ''), "needs exactly one of"),
])
def test_bad_user_rows_name_file_row_and_field(tmp_path, monkeypatch, change, message):
    path = _write(tmp_path, GOOD.replace(*change), monkeypatch)
    with pytest.raises(UsageError) as err:
        manifest.rows()
    assert message in str(err.value) and str(path) in str(err.value) and "[resnet18.mine]" in str(err.value)


def test_unreadable_or_invalid_manifest_files(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_MANIFEST", str(tmp_path / "nope.toml"))
    with pytest.raises(UsageError, match="cannot be read"):
        manifest.rows()
    _write(tmp_path, "[resnet18.mine\n", monkeypatch)
    with pytest.raises(UsageError, match="not valid TOML"):
        manifest.rows()
