"""A .keras file from zoo opens with plain keras.saving.load_model where zoo cannot be imported,
and gives the same outputs: preprocessing, BGR flips, FCN's padding, cropping and bilinear
upsampling are Keras built-in layers (at a fixed input size for FCN)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import zoo
from helpers import BLOCK_ZOO

# Runs with `python -I` where zoo cannot be imported (installed or not: sys.modules["zoo"] = None
# makes every `import zoo...` fail, Keras's own included), then loads each model and saves its outputs.
_LOAD_WITHOUT_ZOO = BLOCK_ZOO + """
import numpy as np
import keras
for path in sys.argv[1:]:
    model = keras.saving.load_model(path)
    x = np.load(path + ".x.npy")
    np.save(path + ".y.npy", np.asarray(model.predict(x, verbose=0)))
"""


def _outputs_without_zoo(paths, cwd) -> list[np.ndarray]:
    run = subprocess.run([sys.executable, "-I", "-c", _LOAD_WITHOUT_ZOO, *map(str, paths)], cwd=cwd,
                         capture_output=True, text=True, timeout=600,
                         env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "HOME": str(cwd)})
    assert run.returncode == 0, run.stderr[-3000:]
    return [np.load(f"{p}.y.npy") for p in paths]


def _save(model, folder, name, *, seed=0):
    shape = (2, *model.input_shape[1:])
    x = np.random.default_rng(seed).uniform(0, 255, shape).astype("float32")
    path = folder / f"{name}.keras"
    model.save(path)
    np.save(f"{path}.x.npy", x)
    return path, np.asarray(model.predict(x, verbose=0))


BUILDS = [
    ("lenet5", {"weights": "fashion_mnist"}),
    ("resnet18", {"style": "keras", "input_shape": (64, 64, 3)}),  # caffe: a BGR flip in the model
    ("googlenet", {"input_shape": (64, 64, 3), "transform_input": True}),
    ("densenet121", {"input_shape": (64, 64, 1)}),  # gray input, averaged preprocessing
    ("fcn8s", {"input_shape": (64, 64, 3), "backbone": "resnet18"}),
    ("yolo_lite", {"input_shape": (64, 64, 3)}),
]


@pytest.mark.slow
def test_builds_open_in_keras_without_zoo(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    saved = [_save(zoo.build(name, **kwargs), folder, name) for name, kwargs in BUILDS]
    got = _outputs_without_zoo([p for p, _ in saved], cwd=folder)
    for (path, want), out in zip(saved, got):
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5, err_msg=path.name)


def test_keras_style_builder_and_finetune_output_open_without_zoo(tmp_path):
    from helpers import write_digits

    from zoo.models import LeNet5

    folder = tmp_path / "models"
    folder.mkdir()
    data = write_digits(tmp_path / "digits", per_class=3)
    tuned = zoo.finetune("lenet5", data, out=tmp_path / "run", weights=None, epochs=1, batch_size=8, verbose=0)
    saved = [_save(LeNet5(weights="fashion_mnist"), folder, "builder"), _save(tuned, folder, "tuned")]
    # The model directory's own model.keras, as zoo finetune wrote it.
    run_model = tmp_path / "run" / "model.keras"
    np.save(f"{run_model}.x.npy", np.load(f"{saved[1][0]}.x.npy"))
    paths = [p for p, _ in saved] + [run_model]
    got = _outputs_without_zoo(paths, cwd=folder)
    for want, out in zip([w for _, w in saved] + [saved[1][1]], got):
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
