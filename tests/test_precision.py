"""Both mixed policies train on a CPU: finite loss, float32 variables, float32 outputs."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from helpers import write_digits


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_policies_train_on_cpu(tmp_path, precision):
    import keras

    import zoo

    data = write_digits(tmp_path / "data", per_class=8, classes=range(3))
    model = zoo.finetune("lenet5", data, out=tmp_path / "out", weights=None, epochs=2, batch_size=8,
                         augment="none", precision=precision, verbose=0)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after training
    rows = list(csv.DictReader(open(tmp_path / "out" / "history.csv")))
    assert len(rows) == 2 and all(math.isfinite(float(r["loss"])) for r in rows)
    assert all(w.dtype == "float32" for w in model.weights)
    assert model.get_layer("conv1").dtype_policy.name == precision
    loaded = zoo.load_model(tmp_path / "out")
    out = loaded.predict(np.zeros((2, 32, 32, 1), "float32"), verbose=0)
    assert out.dtype == np.float32
    import json

    assert json.loads((tmp_path / "out" / "metadata.json").read_text())["precision"] == precision


def test_auto_precision_is_float32_without_a_gpu():
    from zoo.training.precision import default_xla, resolve_precision

    assert resolve_precision("auto") == "float32"
    assert default_xla(None) is False
