"""The weights cache is keyed by URL and checksum: a same-named file from another URL is never served
in its place, a different checksum never evicts a good file, and every URL download needs a checksum."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fetch_server import FileServer  # noqa: E402
from zoo.errors import UsageError, WeightsError
from zoo.pretrained import fetch as F

A, B = b"weights of model A" * 100, b"weights of model B" * 100


@pytest.fixture
def server():
    with FileServer() as srv:
        srv.files["/org-a/model.safetensors"] = A
        srv.files["/org-b/model.safetensors"] = B
        yield srv


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def test_second_url_with_the_same_file_name_gets_its_own_weights(server):
    a = F.fetch_url(server.url("/org-a/model.safetensors"), sha256=_sha(A), progress=False)
    b = F.fetch_url(server.url("/org-b/model.safetensors"), sha256=_sha(B), progress=False)
    assert a != b and a.read_bytes() == A and b.read_bytes() == B
    assert a.name.endswith("-model.safetensors") and b.name.endswith("-model.safetensors")


def test_same_named_file_with_another_checksum_never_evicts_a_good_one(server):
    good = F.fetch_url(server.url("/org-a/model.safetensors"), sha256=_sha(A), progress=False)
    with pytest.raises(WeightsError):
        F.fetch_url(server.url("/org-a/model.safetensors"), sha256=_sha(B), progress=False)
    assert good.read_bytes() == A
    # the legacy name-keyed path too: a failing check keeps the file until a verified one replaces it
    with pytest.raises(WeightsError):
        F.fetch([server.url("/org-b/model.safetensors")], filename=good.name, sha256="0" * 64, progress=False)
    assert good.read_bytes() == A


def test_url_weights_without_checksum_are_refused_before_any_request(server):
    import zoo

    with pytest.raises(UsageError, match="#sha256="):
        zoo.build("lenet5", weights=server.url("/org-a/model.safetensors"))
    assert server.requests == []


def test_url_checksum_in_fragment_and_explicit_pin(server):
    url = server.url("/org-a/model.safetensors")
    assert F.fetch_url(f"{url}#sha256={_sha(A)}", progress=False).read_bytes() == A
    pinned = F.fetch_url(f"{url}#pin", progress=False)
    assert F.pin_file(pinned).read_text().strip() == _sha(A)
    with pytest.raises(UsageError, match="Unknown checksum"):
        F.fetch_url(f"{url}#sha1=abc", progress=False)


@pytest.mark.parametrize("tail", ["/..", "/.", "/", "/%2e%2e"])
def test_url_ending_in_dot_dot_stays_a_file_in_the_cache(server, tail):
    server.files["/org-a" + tail] = A
    path = F.fetch_url(server.url("/org-a" + tail), sha256=_sha(A), progress=False)
    assert path.parent == F.cache_dir() and path.is_file() and path.name.endswith("-download")
    assert F.fetch_url(server.url("/org-b/model.safetensors"), sha256=_sha(B), progress=False).read_bytes() == B


@pytest.mark.parametrize("kind", ["file", "read_only"])
def test_zoo_home_a_file_or_not_writable_is_one_line(server, tmp_path, monkeypatch, kind):
    import os

    home = tmp_path / "home"
    if kind == "file":
        home.write_text("not a folder")
    else:
        (home / "weights").mkdir(parents=True)
        os.chmod(home / "weights", 0o555)
        # root ignores the mode bits; the access check is what zoo asks, so answer it as for a user
        monkeypatch.setattr(F.os, "access", lambda path, mode: False)
    monkeypatch.setenv("ZOO_HOME", str(home))
    with pytest.raises(WeightsError, match="ZOO_HOME") as err:
        F.fetch_url(server.url("/org-a/model.safetensors"), sha256=_sha(A), progress=False)
    assert "\n" not in str(err.value)


def test_zoo_home_read_only_still_serves_verified_files(server, tmp_path, monkeypatch):
    import os

    path = F.fetch_url(server.url("/org-a/model.safetensors"), sha256=_sha(A), progress=False)
    os.chmod(path.parent, 0o555)
    try:
        assert F.fetch_url(server.url("/org-a/model.safetensors"), sha256=_sha(A), progress=False) == path
    finally:
        os.chmod(path.parent, 0o755)
