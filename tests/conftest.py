"""Shared fixtures. Tests build tiny models and run on the CPU; slow tests are marked and still run in CI."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import zoo  # noqa: E402,F401  (zoo's TensorFlow settings, e.g. oneDNN on, before any test imports TensorFlow)

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_zoo_home(tmp_path_factory, monkeypatch):
    """Every test gets its own ZOO_HOME and Keras cache, and never touches the network by accident."""
    home = tmp_path_factory.mktemp("zoo_home")
    monkeypatch.setenv("ZOO_HOME", str(home))
    monkeypatch.setenv("KERAS_HOME", str(home / "keras"))
    yield


@pytest.fixture(autouse=True)
def _temp_dir_under_tmp_path(tmp_path_factory, monkeypatch):
    """Temporary files of the code under test (e.g. segmentation masks when predict has no
    save_dir) go to a folder of this test's tmp paths, in this process and in the CLI
    subprocesses it starts, so a run leaves nothing in the system temp dir."""
    import tempfile

    folder = tmp_path_factory.mktemp("tmp")
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    yield


@pytest.fixture(autouse=True)
def _clear_keras_session():
    yield
    import sys

    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()
