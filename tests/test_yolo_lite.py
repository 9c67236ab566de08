"""YOLO-LITE architecture: the paper's trial 3 counts, options, errors, backbone, registry row."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.errors import UsageError


def test_trial3_no_batch_norm_matches_the_paper():
    from zoo.models.yolo_lite import build

    model = build("yolo_lite")
    assert model.count_params() == 572_317
    assert tuple(model.output_shape[1:]) == (7, 7, 125)
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert len(convs) == 7 and sum(layer.filters for layer in convs) == 749
    assert not any("BatchNormalization" in type(layer).__name__ for layer in model.layers)


def test_registry_row_matches_the_model():
    import zoo
    from zoo.registry import get_spec

    spec = get_spec("yolo_lite")
    model = zoo.build("yolo_lite")
    assert spec.params == model.count_params() == 572_317
    assert spec.task == "detection" and spec.classes == 20 and spec.input_shape == (224, 224, 3)
    # MACs of the seven convolutions at 224 px (k*k*cin*cout*H*W each): 240,004,352.
    expected = sum(k * k * cin * cout * hw * hw for k, cin, cout, hw in
                   [(3, 3, 16, 224), (3, 16, 32, 112), (3, 32, 64, 56), (3, 64, 128, 28), (3, 128, 128, 14),
                    (3, 128, 256, 7), (1, 256, 125, 7)])
    assert spec.macs == expected == 240_004_352


def test_options_change_the_head_and_input():
    from zoo.models.yolo_lite import YOLOLite

    model = YOLOLite(input_shape=(96, 96, 3), classes=3, anchors=[(0.1, 0.1), (0.3, 0.3)], batch_norm=True)
    assert tuple(model.output_shape[1:]) == (3, 3, 2 * (5 + 3))
    assert any(type(layer).__name__ == "BatchNormalization" for layer in model.layers)
    out = model(np.zeros((1, 96, 96, 3), np.float32))
    assert out.shape == (1, 3, 3, 16)
    features = YOLOLite(input_shape=(64, 64, 3), include_top=False)
    assert tuple(features.output_shape[1:]) == (2, 2, 256)


@pytest.mark.parametrize("kwargs, match", [
    ({"input_shape": (100, 100, 3)}, "multiple of 32"),
    ({"input_shape": (96, 128, 3)}, "square"),
    ({"classes": 0}, "classes"),
    ({"anchors": [(0.1, -1.0)]}, "anchors"),
    ({"anchors": "wide"}, "anchors"),
])
def test_bad_options_are_usage_errors(kwargs, match):
    from zoo.models.yolo_lite import YOLOLite

    with pytest.raises(UsageError, match=match):
        YOLOLite(**kwargs)


def test_unknown_option_and_not_a_backbone():
    import zoo
    from zoo.models import yolo_lite

    with pytest.raises(UsageError, match="Unknown yolo_lite option"):
        yolo_lite.build("yolo_lite", widht=2)
    with pytest.raises(UsageError, match="backbone"):
        zoo.build_backbone("yolo_lite")


def test_backbone_s32_replaces_the_trunk():
    import zoo

    backbone = zoo.build_backbone("resnet18", input_shape=(64, 64, 3))
    assert tuple(backbone.output["s32"].shape[1:3]) == (2, 2)
    model = zoo.build("yolo_lite", input_shape=(64, 64, 3), num_classes=4, backbone="resnet18")
    assert tuple(model.output_shape[1:]) == (2, 2, 5 * 9)
    assert model.count_params() > 11_000_000


def test_saved_and_loaded_in_safe_mode(tmp_path):
    import zoo
    from zoo.modeldir import save_model

    model = zoo.build("yolo_lite", input_shape=(64, 64, 3), num_classes=2)
    path = save_model(model, tmp_path / "m.keras")
    loaded = zoo.load_model(path)
    x = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-5)
