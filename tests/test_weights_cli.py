"""`zoo weights list | fetch | verify | import` as a user runs them (subprocesses, loopback server)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fetch_server import FileServer  # noqa: E402

FILES = {f"/w{i}.bin": bytes([i]) * (70_000 + i) for i in range(3)}


def zoo_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True, timeout=timeout,
                          env=os.environ.copy())


def _row(arch: str, tag: str, url: str, sha: str) -> str:
    return (f'[{arch}.{tag}]\nformat = "safetensors"\nurls = ["{url}"]\nsha256 = "{sha}"\nclasses = 1000\n'
            f'labels = "imagenet"\ninput_size = [224, 224, 3]\npreprocessing = {{ mode = "torch" }}\n'
            f'licence = "test"\nsource = "loopback"\n')


@pytest.fixture
def served(tmp_path, monkeypatch):
    with FileServer() as srv:
        srv.files.update(FILES)
        text = "".join(_row("resnet18", f"t{i}", srv.url(path), hashlib.sha256(data).hexdigest())
                       for i, (path, data) in enumerate(FILES.items()))
        srv.files["/bad.bin"] = FILES["/w0.bin"]
        text += _row("resnet34", "bad", srv.url("/bad.bin"), "0" * 64)
        (tmp_path / "m.toml").write_text(text)
        monkeypatch.setenv("ZOO_MANIFEST", str(tmp_path / "m.toml"))
        yield srv


def test_list_shows_shipped_and_downloadable_weights():
    out = zoo_cli("weights", "list")
    assert out.returncode == 0, out.stderr
    assert "lenet5.fashion_mnist" in out.stdout and "shipped" in out.stdout and "resnet50.imagenet" in out.stdout


def test_fetch_prints_the_cached_path_and_verify_finds_every_corrupted_file(served):
    paths = []
    for i in range(3):
        out = zoo_cli("weights", "fetch", f"resnet18.t{i}")
        assert out.returncode == 0, out.stderr
        paths.append(Path(out.stdout.strip()))
        assert paths[-1].read_bytes() == FILES[f"/w{i}.bin"]
    assert zoo_cli("weights", "verify").returncode == 0
    paths[0].write_bytes(b"bit rot")
    with open(paths[2], "r+b") as fh:  # one flipped byte in the middle
        fh.seek(1000)
        fh.write(b"\xff")
    out = zoo_cli("weights", "verify")
    assert out.returncode == 1
    corrupt = [line for line in out.stdout.splitlines() if line.startswith("corrupt")]
    assert len(corrupt) == 2 and str(paths[0]) in out.stdout and str(paths[2]) in " ".join(corrupt)
    assert zoo_cli("weights", "verify", "--delete").returncode == 1
    assert not paths[0].exists() and paths[1].exists()


def test_fetch_failure_is_one_line_nonzero_and_leaves_nothing(served):
    out = zoo_cli("weights", "fetch", "resnet34.bad")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "sha256" in out.stderr
    cache = Path(os.environ["ZOO_HOME"]) / "weights"
    assert not any(p.suffix in (".bin", ".part") for p in cache.iterdir())


def test_fetch_url_needs_a_checksum_and_accepts_one(served):
    url = served.url("/w1.bin")
    out = zoo_cli("weights", "fetch", url)
    assert out.returncode == 2 and "--sha256" in out.stderr
    out = zoo_cli("weights", "fetch", url, "--sha256", hashlib.sha256(FILES["/w1.bin"]).hexdigest())
    assert out.returncode == 0 and Path(out.stdout.strip()).read_bytes() == FILES["/w1.bin"]
    assert zoo_cli("weights", "fetch", "nosuch.tag").returncode == 2


def test_import_registers_a_tag_that_builds_offline(tmp_path, monkeypatch):
    import numpy as np

    import zoo
    from zoo.pretrained import manifest

    src = tmp_path / "mine.weights.h5"
    shutil.copy(manifest.shipped_path("lenet5_fashion_mnist.weights.h5"), src)
    out = zoo_cli("weights", "import", str(src), "--arch", "lenet5", "--tag", "mine")
    assert out.returncode == 0, out.stderr
    assert "lenet5.mine" in out.stdout
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    model = zoo.build("lenet5", weights="mine")
    reference = zoo.build("lenet5", weights="fashion_mnist")
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(reference(x)), rtol=1e-6)
    again = zoo_cli("weights", "import", str(src), "--arch", "lenet5", "--tag", "mine")
    assert again.returncode == 2 and "--force" in again.stderr
    assert zoo_cli("weights", "import", str(src), "--arch", "lenet5", "--tag", "mine", "--force").returncode == 0
