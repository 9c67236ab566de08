"""Faults around the weights cache: SIGKILL mid-download, and `zoo weights verify` on every kind of damage.

The promise: a fetch killed at any instant leaves no file under its final name in the cache (only
a hidden `.NAME.part` that the next fetch resumes), the next fetch succeeds and is verified, and
`zoo weights verify` reports every cached file whose bytes differ from its checksum or pin.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fetch_server import FileServer  # noqa: E402

from zoo.pretrained import fetch as F  # noqa: E402

BIG = bytes(range(256)) * 4096  # 1 MiB = 16 chunks of 64 KiB
FETCH = ("import sys\nfrom zoo.pretrained.fetch import fetch\n"
         "fetch([sys.argv[1]], filename='big.bin', sha256=sys.argv[2], progress=False)\n")


def _wait_for(predicate, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            pytest.fail(f"the fetch ended before it could be killed: {proc.stderr.read()[-800:]}")
        time.sleep(0.02)
    pytest.fail("the download never started")


def test_sigkill_mid_download_leaves_no_file_under_the_final_name_and_next_fetch_succeeds():
    sha = hashlib.sha256(BIG).hexdigest()
    with FileServer() as server:
        server.files["/big.bin"] = BIG
        server.delay = 0.4  # seconds per 64 KiB: the transfer stalls mid-file for seconds
        proc = subprocess.Popen([sys.executable, "-c", FETCH, server.url("/big.bin"), sha],
                                stderr=subprocess.PIPE, text=True)
        part = F.cache_dir() / ".big.bin.part"
        try:
            _wait_for(lambda: part.exists() and part.stat().st_size > 0, 60, proc)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        target = F.cache_dir() / "big.bin"
        assert not target.exists(), "a partial file was left under the final name"
        assert 0 < part.stat().st_size < len(BIG)
        assert F.cached_files() == []  # nothing for predict/build to pick up by mistake
        server.delay = 0.0
        server.requests.clear()
        path = F.fetch([server.url("/big.bin")], filename="big.bin", sha256=sha, progress=False)
        assert path == target and path.read_bytes() == BIG
        assert server.requests[0][1] and server.requests[0][1].startswith("bytes="), "not resumed with a Range"
        assert not part.exists()


def test_a_stale_partial_from_another_file_never_becomes_the_cached_file():
    """The .part holds bytes of a different file (the server changed it): the result is verified."""
    sha = hashlib.sha256(BIG).hexdigest()
    part = F.cache_dir() / ".big.bin.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"\x00" * 70_000)
    with FileServer() as server:
        server.files["/big.bin"] = BIG
        from zoo.errors import WeightsError

        try:
            path = F.fetch([server.url("/big.bin")], filename="big.bin", sha256=sha, progress=False)
        except WeightsError as exc:  # the resumed file fails its checksum: refused, partial removed
            assert "sha256" in str(exc) and not (F.cache_dir() / "big.bin").exists() and not part.exists()
            path = F.fetch([server.url("/big.bin")], filename="big.bin", sha256=sha, progress=False)
        assert path.read_bytes() == BIG


def _row(arch, tag, url, sha=None, pin=False, notop=None) -> str:
    check = f'sha256 = "{sha}"' if sha else "pin = true"
    text = (f'[{arch}.{tag}]\nformat = "safetensors"\nurls = ["{url}"]\n{check}\nclasses = 1000\n'
            f'input_size = [224, 224, 3]\npreprocessing = {{ mode = "torch" }}\nlicence = "test"\nsource = "loopback"\n')
    if notop:
        text += f'notop = {{ urls = ["{notop[0]}"], sha256 = "{notop[1]}" }}\n'
    return text


def test_weights_verify_finds_every_kind_of_damage(tmp_path, monkeypatch):
    """Truncated, appended, one flipped bit, zero-filled, emptied, replaced, a pinned file changed,
    a notop file damaged: each is reported `corrupt`; intact files `ok`; exit status 1."""
    from click.testing import CliRunner

    from zoo.cli.weights import weights_group

    files = {f"/f{i}.bin": os.urandom(5000 + i) for i in range(9)}
    with FileServer() as server:
        server.files.update(files)
        sha = {p: hashlib.sha256(d).hexdigest() for p, d in files.items()}
        text = "".join(_row("resnet18", f"t{i}", server.url(f"/f{i}.bin"), sha[f"/f{i}.bin"]) for i in range(6))
        text += _row("resnet34", "pinned", server.url("/f6.bin"), pin=True)
        text += _row("resnet50", "both", server.url("/f7.bin"), sha["/f7.bin"],
                     notop=(server.url("/f8.bin"), sha["/f8.bin"]))
        (tmp_path / "m.toml").write_text(text)
        monkeypatch.setenv("ZOO_MANIFEST", str(tmp_path / "m.toml"))
        from zoo.pretrained.cache import fetch_weights

        paths = {f"/f{i}.bin": fetch_weights(f"resnet18.t{i}") for i in range(6)}
        paths["/f6.bin"] = fetch_weights("resnet34.pinned")
        paths["/f7.bin"] = fetch_weights("resnet50.both")
        paths["/f8.bin"] = fetch_weights("resnet50.both", notop=True)
    runner = CliRunner()
    clean = runner.invoke(weights_group, ["verify"])
    assert clean.exit_code == 0, clean.output
    damage = {
        "/f0.bin": lambda b: b[:-1],  # truncated by one byte
        "/f1.bin": lambda b: b + b"\x00",  # one byte appended
        "/f2.bin": lambda b: b[:2500] + bytes([b[2500] ^ 1]) + b[2501:],  # one flipped bit
        "/f3.bin": lambda b: b"\x00" * len(b),  # zero-filled, same size (a crashed filesystem)
        "/f4.bin": lambda b: b"",  # emptied
        "/f6.bin": lambda b: os.urandom(len(b)),  # pinned file replaced after its first download
        "/f8.bin": lambda b: b[::-1],  # the notop file of a row
    }
    for name, change in damage.items():
        paths[name].write_bytes(change(paths[name].read_bytes()))
    result = runner.invoke(weights_group, ["verify"])
    assert result.exit_code == 1
    status = {}
    for line in result.stdout.splitlines():
        word, path = line.split()[:2]
        status[Path(path).name] = word
    assert status == {Path(paths[n]).name: ("corrupt" if n in damage else "ok") for n in files}, result.stdout
    deleted = runner.invoke(weights_group, ["verify", "--delete"])
    assert deleted.exit_code == 1
    assert all(not paths[n].exists() for n in damage) and paths["/f5.bin"].exists()
    assert runner.invoke(weights_group, ["verify"]).exit_code == 0
