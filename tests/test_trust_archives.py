"""The trust boundary for archives (TF-Hub modules come as .tar.gz) and URLs.

zoo.safety.safe_extract refuses members with absolute names, `..`, symbolic or hard links and
special files, so nothing is written outside the target; a refused archive leaves nothing behind.
zoo.pretrained.hub.resolve_handle unpacks local module archives through it. Downloads and TF-Hub
handles are https only, except loopback addresses or ZOO_ALLOW_HTTP=1 (zoo.pretrained.fetch.check_url),
and `zoo predict` image URLs follow the same rule.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from zoo.errors import ImageError, UsageError, WeightsError
from zoo.safety import extract_cached, safe_extract


def _tar(path: Path, members: list[tuple[str, str, bytes | str]], mode: str = "w:gz") -> Path:
    """members: (kind, name, data-or-link-target) with kind file | dir | sym | hard | fifo | chr."""
    with tarfile.open(path, mode) as tar:
        for kind, name, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}[kind]
            if kind in ("sym", "hard"):
                info.linkname = data
            tar.addfile(info)
    return path


GOOD = [("dir", "variables", b""), ("file", "saved_model.pb", b"pb"), ("file", "variables/variables.index", b"i")]


def test_a_plain_module_archive_extracts(tmp_path):
    archive = _tar(tmp_path / "m.tar.gz", GOOD)
    out = safe_extract(archive, tmp_path / "out")
    assert (out / "saved_model.pb").read_bytes() == b"pb" and (out / "variables" / "variables.index").is_file()


@pytest.mark.parametrize("members,why", [
    ([("file", "../escaped.txt", b"x")], "`..`"),
    ([("file", "variables/../../escaped.txt", b"x")], "`..`"),
    ([("file", "{tmp}/abs_escape.txt", b"x")], "absolute"),  # {tmp}: this test's tmp_path
    ([("sym", "link", "/etc"), ("file", "link/escaped.txt", b"x")], "link"),
    ([("sym", "link", "../../.."), ("file", "saved_model.pb", b"pb")], "link"),
    ([("sym", "saved_model.pb", "/etc/passwd")], "link"),
    ([("hard", "saved_model.pb", "/etc/passwd")], "link"),
    ([("fifo", "pipe", b"")], "special"),
    ([("chr", "dev", b"")], "special"),
])
def test_traversal_links_and_special_files_are_refused(tmp_path, members, why):
    members = [(kind, name.format(tmp=tmp_path), data) for kind, name, data in members]
    archive = _tar(tmp_path / "evil.tar.gz", GOOD + members)
    dest = tmp_path / "deep" / "out"
    with pytest.raises(UsageError, match=why) as info:
        safe_extract(archive, dest)
    assert "\n" not in str(info.value)
    assert not dest.exists() and not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "abs_escape.txt").exists()
    assert list(dest.parent.iterdir()) == []  # the temp folder is gone too


@pytest.mark.parametrize("content", [b"", b"not a tar at all", b"\x1f\x8b\x08\x00 truncated gzip"])
def test_not_an_archive_is_a_usage_error(tmp_path, content):
    archive = tmp_path / "m.tar.gz"
    archive.write_bytes(content)
    with pytest.raises(UsageError, match="Cannot extract"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_extract_cached_keys_by_content_and_reuses(tmp_path):
    a = _tar(tmp_path / "a.tar.gz", GOOD)
    first = extract_cached(a, tmp_path / "hub")
    assert extract_cached(a, tmp_path / "hub") == first
    b = _tar(tmp_path / "b.tar.gz", [("file", "saved_model.pb", b"other")])
    assert extract_cached(b, tmp_path / "hub") != first


def test_hub_resolves_a_local_module_archive_and_refuses_an_evil_one(tmp_path):
    from zoo.pretrained.hub import resolve_handle

    folder = resolve_handle(_tar(tmp_path / "module.tar.gz", GOOD))
    assert (folder / "saved_model.pb").read_bytes() == b"pb"
    evil = _tar(tmp_path / "evil.tgz", GOOD + [("sym", "variables/x", "/etc/passwd")])
    with pytest.raises(UsageError, match="link"):
        resolve_handle(evil)


def test_hub_handles_are_https_only(monkeypatch):
    from zoo.pretrained.hub import resolve_handle

    monkeypatch.delenv("ZOO_ALLOW_HTTP", raising=False)
    with pytest.raises(WeightsError, match="only https"):
        resolve_handle("http://tfhub.example.org/google/module/1")


def test_predict_image_urls_are_https_only_except_loopback(monkeypatch):
    from zoo.data.sources import read_url

    monkeypatch.delenv("ZOO_ALLOW_HTTP", raising=False)
    calls = []
    import urllib.request

    # Every connection goes through an OpenerDirector (zoo's opener checks each redirect hop).
    monkeypatch.setattr(urllib.request.OpenerDirector, "open",
                        lambda self, *a, **k: calls.append(a) or (_ for _ in ()).throw(OSError("x")))
    with pytest.raises(ImageError, match="https"):
        read_url("http://images.example.org/cat.jpg")
    assert calls == []  # refused before any connection
    with pytest.raises(ImageError, match="cannot download"):
        read_url("http://127.0.0.1:9/cat.jpg")  # loopback is allowed (it then fails to connect here)
    monkeypatch.setenv("ZOO_ALLOW_HTTP", "1")
    with pytest.raises(ImageError, match="cannot download"):
        read_url("http://images.example.org/cat.jpg")
    assert len(calls) == 2
