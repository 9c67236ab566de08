"""zoo.pretrained.fetch against a loopback HTTP server: verified, atomic, locked, resumable, offline-aware."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fetch_server import FileServer  # noqa: E402
from zoo.errors import WeightsError
from zoo.pretrained import fetch as F

DATA = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes, many chunks
SHA = hashlib.sha256(DATA).hexdigest()
MD5 = hashlib.md5(DATA).hexdigest()


@pytest.fixture
def server():
    with FileServer() as srv:
        srv.files["/w.h5"] = DATA
        yield srv


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part")) if folder.exists() else []


def test_good_download_is_verified_cached_and_reused(server):
    path = F.fetch([server.url("/w.h5")], filename="w.h5", sha256=SHA, progress=False)
    assert path == F.cache_dir() / "w.h5" and path.read_bytes() == DATA
    assert str(path).startswith(os.environ["ZOO_HOME"])
    again = F.fetch([server.url("/w.h5")], filename="w.h5", sha256=SHA, progress=False)
    assert again == path and len(server.requests) == 1  # the second call never touched the network
    assert _leftovers(F.cache_dir()) == []


def test_wrong_checksum_leaves_nothing_and_names_url_cache_and_way_out(server):
    server.files["/w.h5"] = DATA[:-1] + b"X"
    with pytest.raises(WeightsError) as err:
        F.fetch([server.url("/w.h5")], filename="w.h5", sha256=SHA, progress=False)
    msg = str(err.value)
    assert server.url("/w.h5") in msg and str(F.cache_dir() / "w.h5") in msg and "by hand" in msg
    assert "expected " + SHA in msg
    assert not (F.cache_dir() / "w.h5").exists() and _leftovers(F.cache_dir()) == []


def test_md5_and_torchvision_prefix_checksums(server):
    assert F.fetch([server.url("/w.h5")], filename="a.h5", md5=MD5, progress=False).read_bytes() == DATA
    assert F.fetch([server.url("/w.h5")], filename="b.h5", sha256_prefix=SHA[:8], progress=False).exists()
    with pytest.raises(WeightsError, match="start with 00000000"):
        F.fetch([server.url("/w.h5")], filename="c.h5", sha256_prefix="00000000", progress=False)


def test_cut_connection_is_resumed_with_a_range_request(server):
    server.cut_once.add("/w.h5")
    path = F.fetch([server.url("/w.h5")], filename="w.h5", sha256=SHA, progress=False)
    assert path.read_bytes() == DATA
    assert len(server.requests) == 2
    assert server.requests[0][1] is None and server.requests[1][1] == f"bytes={len(DATA) // 2}-"


def test_server_ignoring_range_restarts_cleanly(server):
    server.cut_once.add("/w.h5")
    server.no_range.add("/w.h5")
    assert F.fetch([server.url("/w.h5")], filename="w.h5", sha256=SHA, progress=False).read_bytes() == DATA


def test_mirrors_are_tried_in_order(server):
    path = F.fetch([server.url("/missing.h5"), server.url("/w.h5")], filename="w.h5", sha256=SHA, progress=False)
    assert path.read_bytes() == DATA and [r[0] for r in server.requests] == ["/missing.h5", "/w.h5"]


def test_damaged_cache_file_is_replaced_not_loaded(server):
    target = F.cache_dir() / "w.h5"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"truncated")
    assert F.fetch([server.url("/w.h5")], filename="w.h5", sha256=SHA, progress=False).read_bytes() == DATA


def test_two_processes_fetching_at_once_share_one_download(server, tmp_path):
    server.delay = 0.01  # ~0.2 s per download, so the two processes overlap
    code = ("import sys; from zoo.pretrained.fetch import fetch; "
            f"print(fetch([sys.argv[1]], filename='w.h5', sha256='{SHA}', progress=False))")
    procs = [subprocess.Popen([sys.executable, "-c", code, server.url("/w.h5")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=os.environ.copy()) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    paths = {Path(out.strip()) for out, _ in outs}
    assert paths == {F.cache_dir() / "w.h5"} and (F.cache_dir() / "w.h5").read_bytes() == DATA
    assert len(server.requests) == 1  # the lock made the second process find the finished file
    assert _leftovers(F.cache_dir()) == []


def test_offline_miss_says_which_file_to_put_where_and_never_connects(server, monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(WeightsError) as err:
        F.fetch([server.url("/w.h5")], filename="w.h5", sha256=SHA, progress=False)
    msg = str(err.value)
    assert "ZOO_OFFLINE=1" in msg and server.url("/w.h5") in msg and str(F.cache_dir() / "w.h5") in msg
    assert server.requests == []


def test_offline_hit_uses_the_cache(server, monkeypatch):
    F.fetch([server.url("/w.h5")], filename="w.h5", sha256=SHA, progress=False)
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    assert F.fetch([server.url("/w.h5")], filename="w.h5", sha256=SHA, progress=False).read_bytes() == DATA
    assert len(server.requests) == 1


def test_keras_cache_file_with_the_right_hash_is_reused(server, monkeypatch):
    keras_models = Path(os.environ["KERAS_HOME"]) / "models"
    keras_models.mkdir(parents=True)
    (keras_models / "w.h5").write_bytes(DATA)
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    assert F.fetch([server.url("/w.h5")], filename="w.h5", md5=MD5, progress=False) == keras_models / "w.h5"
    (keras_models / "w.h5").write_bytes(b"other")  # wrong hash: not reused
    with pytest.raises(WeightsError, match="ZOO_OFFLINE"):
        F.fetch([server.url("/w.h5")], filename="w.h5", md5=MD5, progress=False)


def test_pin_records_the_sha256_and_catches_a_later_change(server):
    path = F.fetch([server.url("/w.h5")], filename="w.h5", pin=True, progress=False)
    assert F.pin_file(path).read_text().strip() == SHA
    path.write_bytes(b"tampered")
    assert F.Checksum(pin=True).check(path) is not None
    assert F.fetch([server.url("/w.h5")], filename="w.h5", pin=True, progress=False).read_bytes() == DATA


def test_plain_http_only_for_loopback_or_when_allowed():
    with pytest.raises(WeightsError, match="only https"):
        F.check_url("http://example.org/w.h5")
    F.check_url("http://example.org/w.h5", allow_http=True)
    F.check_url("http://localhost:8000/w.h5")
    F.check_url("https://example.org/w.h5")
    with pytest.raises(WeightsError):
        F.check_url("ftp://example.org/w.h5")


def test_no_checksum_is_refused(server):
    with pytest.raises(WeightsError, match="without a checksum"):
        F.fetch([server.url("/w.h5")], filename="w.h5", progress=False)


def test_progress_bar_goes_to_stderr_not_stdout(server, capsys):
    F.fetch([server.url("/w.h5")], filename="w.h5", sha256=SHA, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout stays clean for the printed path


def test_torch_hub_cache_file_is_reused(server, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "resnet-abcdef12.pth").write_bytes(DATA)
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    path = F.fetch([server.url("/w.h5")], filename="resnet-abcdef12.pth", sha256_prefix=SHA[:8], progress=False)
    assert path == folder / "resnet-abcdef12.pth"
