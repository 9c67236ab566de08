"""torchvision / timm state dicts -> zoo, checked against torchvision's own outputs without torch.

Fixtures come from scripts/make_torch_fixtures.py (versions in tests/fixtures/torch/VERSIONS.json):
torchvision's model classes filled with the deterministic weights of tests/torch_synth.py, so the
tests rebuild the same state dicts here and need no committed weight files for full-size models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from torch_synth import synth_state_dict  # noqa: E402

import zoo  # noqa: E402
from zoo.errors import WeightsError  # noqa: E402
from zoo.pretrained.formats import detect_format  # noqa: E402

FIX = Path(__file__).parent / "fixtures" / "torch"

# case: (registry name, input shape, build options)
CASES = {
    "resnet50": ("resnet50", (64, 64, 3), {}),  # v1.5: stride in the 3x3, no conv bias
    "densenet121": ("densenet121", (64, 64, 3), {}),  # BN epsilon 1e-5 imposed by the weights
    "googlenet": ("googlenet", (64, 64, 3), {}),
    "vgg11_bn_features": ("vgg11_bn", (64, 64, 3), {"include_top": False}),
}


def _state_dict_file(case: str, tmp_path: Path) -> Path:
    from safetensors.numpy import save_file

    shapes = json.loads((FIX / f"{case}.json").read_text())
    path = tmp_path / f"{case}.safetensors"
    save_file(synth_state_dict(shapes), str(path))
    return path


def _close(got: np.ndarray, want: np.ndarray) -> None:
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * scale)


def _check_case(case: str, tmp_path: Path) -> None:
    arch, shape, options = CASES.get(case, ("alexnet", (224, 224, 3), {}))
    path = _state_dict_file(case, tmp_path)
    model = zoo.build(arch, weights=str(path), input_shape=shape, include_preprocessing=False,
                      classifier_activation=None, **options)
    report = model._zoo_load_report
    assert report.ok and report.unused == [], report.summary()
    x = np.load(FIX / f"{case}_input.npy")
    _close(np.asarray(model(x, training=False)), np.load(FIX / f"{case}_output.npy"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_torchvision_state_dict_gives_torchvisions_outputs(case, tmp_path):
    _check_case(case, tmp_path)


@pytest.mark.slow
def test_alexnet_first_dense_after_flatten_is_reordered_chw_to_hwc(tmp_path):
    _check_case("alexnet", tmp_path)


def test_bare_torch_files_choose_their_architecture_options(tmp_path):
    from zoo.registry import resolve_weights

    resnet = resolve_weights("resnet50", _state_dict_file("resnet50", tmp_path))
    assert resnet.format == "safetensors" and resnet.arch_options == {"style": "torchvision"}
    assert resnet.num_classes == 1000 and len(resnet.labels) == 1000 and resnet.preprocessing["mode"] == "torch"
    densenet = resolve_weights("densenet121", _state_dict_file("densenet121", tmp_path))
    assert densenet.arch_options == {"epsilon": 1e-5}
    with pytest.raises(zoo.errors.UsageError, match="need style='torchvision'"):
        zoo.build("resnet50", weights=str(tmp_path / "resnet50.safetensors"), style="keras")


def _tiny(weights, **kwargs):
    kwargs.setdefault("input_shape", (64, 64, 3))
    return zoo.build("densenet121", weights=str(weights), blocks=(1, 1, 1, 1), include_preprocessing=False,
                     classifier_activation=None, **kwargs)


def test_safetensors_file_written_by_torch_loads_with_its_head():
    path = FIX / "densenet_tiny.safetensors"
    assert detect_format(path) == "safetensors" and detect_format(FIX / "densenet_tiny.pth") == "torch"
    model = _tiny(path)
    assert model.output_shape == (None, 10) and model._zoo_load_report.ok
    _close(np.asarray(model(np.load(FIX / "densenet_tiny_input.npy"), training=False)),
           np.load(FIX / "densenet_tiny_output.npy"))


def test_torch_head_swap_keeps_backbone_and_reports_the_head():
    model = _tiny(FIX / "densenet_tiny.safetensors", num_classes=3)
    report = model._zoo_load_report
    assert [n for n, _ in report.skipped] == ["predictions"] and "(68, 10)" in report.skipped[0][1]
    assert "bn" in report.loaded and "conv1_conv" in report.loaded


def test_pth_needs_torch_and_says_how_to_convert():
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(WeightsError, match="safetensors"):
            _tiny(FIX / "densenet_tiny.pth")
        return
    model = _tiny(FIX / "densenet_tiny.pth")  # torch.load(weights_only=True)
    _close(np.asarray(model(np.load(FIX / "densenet_tiny_input.npy"), training=False)),
           np.load(FIX / "densenet_tiny_output.npy"))


def test_weights_for_another_architecture_are_refused_by_name(tmp_path):
    with pytest.raises(WeightsError, match="another architecture"):
        zoo.build("resnet18", weights=str(FIX / "densenet_tiny.safetensors"), input_shape=(32, 32, 3))


def test_gray_input_sums_the_rgb_first_conv_exactly():
    x = np.load(FIX / "densenet_tiny_input.npy")[..., :1]
    rgb = _tiny(FIX / "densenet_tiny.safetensors")
    gray = _tiny(FIX / "densenet_tiny.safetensors", input_shape=(64, 64, 1))
    assert gray._zoo_load_report.adapted[0][0] == "conv1_conv"
    _close(np.asarray(gray(x, training=False)), np.asarray(rgb(np.repeat(x, 3, axis=-1), training=False)))


def test_four_channel_input_repeats_the_kernel_and_extends_preprocessing():
    from zoo.pretrained.load import adapt_input_kernel
    from zoo.pretrained.resolve import adapt_preprocessing

    kernel = np.arange(2 * 2 * 3 * 5, dtype="float32").reshape(2, 2, 3, 5)
    four = adapt_input_kernel(kernel, 4)
    np.testing.assert_allclose(four, np.concatenate([kernel, kernel[:, :, :1]], axis=2) * 0.75)
    np.testing.assert_allclose(adapt_input_kernel(kernel, 1), kernel.sum(axis=2, keepdims=True))
    pre = adapt_preprocessing({"mode": "torch", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                               "channel_order": "rgb"}, 4)
    assert pre["mean"][:3] == [0.485, 0.456, 0.406] and pre["mean"][3] == pytest.approx(0.449)
    model = zoo.build("densenet121", weights=str(FIX / "densenet_tiny.safetensors"), blocks=(1, 1, 1, 1),
                      input_shape=(64, 64, 4))  # with the torch preprocessing, extended to 4 channels
    assert model._zoo_load_report.adapted[0][1] == "input kernel (7, 7, 3, 64) -> (7, 7, 4, 64)"
    assert model.get_layer("preprocess").mean[3] == pytest.approx(0.449)
    with pytest.raises(zoo.errors.UsageError, match="BGR"):
        adapt_preprocessing({"mode": "caffe", "mean": [1.0, 2.0, 3.0], "channel_order": "bgr"}, 4)
