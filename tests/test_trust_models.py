"""The trust boundary for model files: no code from a .keras file or a model directory runs.

zoo.load_model, `zoo predict` and everything that loads a model use Keras's safe mode: a Lambda
layer (Python bytecode inside the file) and configs that name arbitrary Python modules are refused
with one line, and the code never runs (a side-effect marker file proves it). zoo has no flag to
turn this off; a user who trusts a file loads it with keras.saving.load_model(path,
safe_mode=False) and passes the model object to zoo.predict (README "Reliability and security").
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from zoo.errors import UsageError


def _lambda_model(marker: Path):
    import keras

    path = str(marker)
    inputs = keras.Input((28, 28, 1))
    # the function's bytecode is stored in the .keras file; running it creates `marker`
    outputs = keras.layers.Lambda(lambda x: (open(path, "w").write("code ran"), x)[1])(inputs)
    outputs = keras.layers.Flatten()(outputs)
    outputs = keras.layers.Dense(10, activation="softmax")(outputs)
    return keras.Model(inputs, outputs)


@pytest.fixture
def lambda_file(tmp_path):
    marker = tmp_path / "MARKER"
    model = _lambda_model(marker)
    path = tmp_path / "evil.keras"
    model.save(path)
    marker.unlink(missing_ok=True)  # building it ran the function once, here, on purpose
    return path, marker


def test_lambda_layer_is_refused_and_its_code_never_runs(lambda_file, tmp_path):
    import zoo

    path, marker = lambda_file
    with pytest.raises(UsageError, match="Lambda") as info:
        zoo.load_model(path)
    assert "\n" not in str(info.value)
    assert not marker.exists()
    folder = tmp_path / "evil_dir"  # the same inside a model directory
    folder.mkdir()
    (folder / "model.keras").write_bytes(path.read_bytes())
    (folder / "metadata.json").write_text(json.dumps({"arch": "x", "task": "classification"}))
    with pytest.raises(UsageError, match="Lambda"):
        zoo.predict([os.fspath(tmp_path / "nothing.png")], model=folder)
    assert not marker.exists()


def test_the_marker_would_show_code_running(lambda_file):
    """Guards the test above: loading the same file without safe mode does run the code."""
    import keras

    path, marker = lambda_file
    keras.saving.load_model(path, safe_mode=False)
    assert marker.read_text() == "code ran"


def test_cli_predict_refuses_a_lambda_model_in_one_line(lambda_file, tmp_path, monkeypatch, capsys):
    from PIL import Image

    from zoo.cli import main

    path, marker = lambda_file
    image = tmp_path / "x.png"
    Image.new("L", (28, 28)).save(image)
    monkeypatch.setenv("ZOO_VERBOSE", "1")  # in-process: leave fd 2 alone so capsys sees the line
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(image), "--model", str(path)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err and "Lambda" in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    assert not marker.exists()


def _rewrite_config(src: Path, dst: Path, edit) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            zout.writestr(item, data)


@pytest.mark.parametrize("module,name,config", [
    ("subprocess", "Popen", {"args": ["touch", "{marker}"]}),
    ("os", "system", {"command": "touch {marker}"}),
    ("builtins", "exec", {"source": "open('{marker}', 'w')"}),
    ("keras.src.utils", "get_file", {"fname": "{marker}", "origin": "file:///etc/hostname"}),
])
def test_config_naming_a_python_callable_is_refused(tmp_path, module, name, config):
    """A hand-edited config.json whose layer names any importable callable (CVE-2025-1550 style)."""
    import keras

    import zoo

    marker = tmp_path / "MARKER"
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(tmp_path / "ok.keras")
    filled = json.loads(json.dumps(config).replace("{marker}", str(marker)))

    def edit(cfg):
        layer = cfg["config"]["layers"][1]
        layer.update(module=module, class_name=name, config=filled, registered_name=None)

    _rewrite_config(tmp_path / "ok.keras", tmp_path / "evil.keras", edit)
    with pytest.raises(UsageError):
        zoo.load_model(tmp_path / "evil.keras")
    assert not marker.exists()


@pytest.mark.parametrize("content", [
    b"",
    b"PK\x03\x04 truncated zip",
    b"\x89HDF\r\n\x1a\n not really hdf5",
    os.urandom(300),
])
def test_damaged_keras_file_is_a_usage_error(tmp_path, content):
    import zoo

    path = tmp_path / "broken.keras"
    path.write_bytes(content)
    with pytest.raises(UsageError, match="broken.keras") as info:
        zoo.load_model(path)
    assert "\n" not in str(info.value)


def test_keras_file_with_a_missing_weights_entry_is_a_usage_error(tmp_path):
    import keras

    import zoo

    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(tmp_path / "ok.keras")
    with zipfile.ZipFile(tmp_path / "ok.keras") as zin, zipfile.ZipFile(tmp_path / "cut.keras", "w") as zout:
        for item in zin.namelist():
            if not item.endswith(".h5"):
                zout.writestr(item, zin.read(item))
    with pytest.raises(UsageError, match="cut.keras"):
        zoo.load_model(tmp_path / "cut.keras")
