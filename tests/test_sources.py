"""zoo.data.sources: files, folders, globs and .txt lists expand in input order; nothing vanishes."""

from __future__ import annotations

import pytest
from PIL import Image

from zoo.data.sources import expand_sources, iter_sources

from helpers import serve


def _img(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (2, 2)).save(path, format="PNG")
    return path


def test_input_order_across_kinds(tmp_path):
    a = _img(tmp_path / "a.png")
    folder = tmp_path / "dir"
    _img(folder / "b.png"), _img(folder / "A.PNG"), _img(folder / "sub" / "c.png")
    (folder / "notes.txt").write_text("not a list given on the command line\n")
    globbed = tmp_path / "g"
    _img(globbed / "x1.png"), _img(globbed / "x2.png")
    (globbed / "x3.csv").write_text("skipped")
    listed = tmp_path / "lists" / "l.txt"
    _img(tmp_path / "lists" / "rel.png")
    listed.write_text(f"# comment\n\nrel.png\n{a}\n{tmp_path / 'gone.png'}\n")
    items = expand_sources([str(folder), str(listed), str(globbed / "x*"), a])
    assert items == [
        (str(folder / "A.PNG"), None),
        (str(folder / "b.png"), None),
        (str(tmp_path / "lists" / "rel.png"), None),
        (str(a), None),
        (str(tmp_path / "gone.png"), None),  # missing: the decoder makes the error record
        (str(globbed / "x1.png"), None),
        (str(globbed / "x2.png"), None),
        (str(a), None),
    ]


def test_recursive_and_empty_folder_and_unmatched_glob(tmp_path):
    _img(tmp_path / "d" / "sub" / "c.png")
    [(source, error)] = expand_sources(tmp_path / "d")
    assert source == str(tmp_path / "d") and "no image files" in error and "--recursive" in error
    assert expand_sources(tmp_path / "d", recursive=True) == [(str(tmp_path / "d" / "sub" / "c.png"), None)]
    [(source, error)] = expand_sources(str(tmp_path / "nothing*.jpg"))
    assert "no image file matches" in error
    assert expand_sources(str(tmp_path / "**" / "*.png"), recursive=True) == [(str(tmp_path / "d" / "sub" / "c.png"), None)]


def test_streams_lazily(tmp_path):
    listed = tmp_path / "many.txt"
    listed.write_text("".join(f"img{i}.jpg\n" for i in range(10_000)))
    it = iter_sources([listed])
    assert next(it) == (str(tmp_path / "img0.jpg"), None)


@pytest.fixture
def http_dir(tmp_path):
    with serve(tmp_path) as base:
        yield tmp_path, base


def test_urls_pass_through_and_download(http_dir, monkeypatch):
    from zoo.data.images import decode_image
    from zoo.data.sources import read_url
    from zoo.errors import ImageError

    folder, base = http_dir
    _img(folder / "a.png")
    url = f"{base}/a.png?size=large"  # a query string is not a glob
    assert expand_sources([url]) == [(url, None)]
    assert decode_image(read_url(url)).shape == (2, 2, 3)
    with pytest.raises(ImageError, match="HTTP 404"):
        read_url(f"{base}/missing.png")
    with pytest.raises(ImageError, match="larger than"):
        read_url(url, max_bytes=10)
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(ImageError, match="ZOO_OFFLINE"):
        read_url(url)
