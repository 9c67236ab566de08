"""A manifest tag end to end: verified download from a (loopback) URL, cache, offline reuse, notop file,
metadata from the row."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fetch_server import FileServer  # noqa: E402

import zoo  # noqa: E402
from zoo.errors import WeightsError  # noqa: E402
from zoo.modeldir import get_meta  # noqa: E402

FIX = Path(__file__).parent / "fixtures" / "torch"


@pytest.fixture
def tagged(tmp_path, monkeypatch):
    data = (FIX / "densenet_tiny.safetensors").read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    with FileServer() as srv:
        srv.files["/tiny.safetensors"] = data
        srv.files["/tiny_notop.safetensors"] = data
        (tmp_path / "m.toml").write_text(
            "[densenet121.loop]\n"
            'format = "safetensors"\n'
            f'urls = ["{srv.url("/tiny.safetensors")}"]\n'
            f'sha256 = "{sha}"\n'
            "classes = 10\n"
            'labels = "fashion_mnist"\n'
            "input_size = [64, 64, 3]\n"
            'preprocessing = { mode = "torch", scale = 0.00392156862745098, mean = [0.485, 0.456, 0.406], '
            'std = [0.229, 0.224, 0.225], channel_order = "rgb", resize = "crop", crop_pct = 0.875 }\n'
            "arch_options = { epsilon = 1e-5 }\n"
            'licence = "test"\nsource = "tests"\n'
            "metrics = { top1 = 1.0 }\n"
            f'notop = {{ urls = ["{srv.url("/tiny_notop.safetensors")}"], sha256 = "{sha}" }}\n'
        )
        monkeypatch.setenv("ZOO_MANIFEST", str(tmp_path / "m.toml"))
        yield srv


def _build(**kwargs):
    return zoo.build("densenet121", weights="loop", blocks=(1, 1, 1, 1), input_shape=(64, 64, 3),
                     classifier_activation=None, **kwargs)


def test_tag_downloads_verifies_loads_and_describes_the_model(tagged, monkeypatch):
    model = _build(include_preprocessing=False)
    x = np.load(FIX / "densenet_tiny_input.npy")
    want = np.load(FIX / "densenet_tiny_output.npy")
    np.testing.assert_allclose(np.asarray(model(x, training=False)), want, rtol=1e-4, atol=1e-4)
    meta = get_meta(model)
    assert meta["labels"][0] == "T-shirt/top" and meta["preprocessing"]["mode"] == "torch"
    assert meta["weights"]["origin"] == "densenet121.loop" and len(meta["weights"]["sha256"]) == 64
    assert [r[0] for r in tagged.requests] == ["/tiny.safetensors"]
    # Offline afterwards: the verified cache serves it; the in-model preprocessing is the row's.
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with_pre = _build()
    assert with_pre.get_layer("preprocess").mean == [0.485, 0.456, 0.406]
    assert len(tagged.requests) == 1


def test_include_top_false_fetches_the_notop_file(tagged):
    model = zoo.build("densenet121", weights="loop", blocks=(1, 1, 1, 1), input_shape=(64, 64, 3),
                      include_top=False, include_preprocessing=False)
    assert [r[0] for r in tagged.requests] == ["/tiny_notop.safetensors"]
    assert model._zoo_load_report.unused == ["classifier"]
    assert get_meta(model)["labels"] == []


def test_offline_miss_for_a_tag_names_the_file_and_place(tagged, monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(WeightsError, match="tiny.safetensors.*put it at"):
        _build()
    assert tagged.requests == []
