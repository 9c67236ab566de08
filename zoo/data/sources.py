"""Expand what people type after `zoo predict` into image sources, in input order, lazily.

    iter_sources(["photos/", "a.jpg", "shots/*.png", "list.txt"], recursive=False)
        -> ("photos/1.jpg", None), ("a.jpg", None), ..., ("shots/*.png", "no file matches ...")

Rules:
- a folder gives its image files (zoo.data.images.list_images, sorted; subfolders with
  `recursive=True`); a folder holding no image gives one error item, so nothing vanishes silently;
- a `.txt` file is a list of sources, one a line (blank lines and `#` comments skipped); relative
  lines are relative to the list's folder; lines may be files, folders or globs, not further lists;
- a path with wildcards (`*`, `?`, `[`, `**` with recursive) that does not exist as such is a
  glob: its image files in sorted order, or one error item when nothing matches;
- an http(s):// URL is yielded as is and read by `read_url` when decoded (never with ZOO_OFFLINE=1);
- anything else is yielded as is; a missing file becomes an error record when it is decoded.
Items are (source, error): error is None for a path to decode, else a one-line reason.
Nothing is listed ahead of need, so a list of millions of paths streams in bounded memory.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from zoo.data.images import IMAGE_EXTENSIONS, list_images
from zoo.errors import ImageError

Item = tuple[str, str | None]

_WILDCARDS = ("*", "?", "[")
URL_SCHEMES = ("http://", "https://")
MAX_URL_BYTES = 64 * 1024 * 1024  # an image larger than this over the network is refused


def iter_sources(sources: str | os.PathLike | Iterable[str | os.PathLike], *, recursive: bool = False) -> Iterator[Item]:
    """Yield (source, error) for every image the sources name, in input order."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    for source in sources:
        yield from _expand(os.fspath(source), recursive=recursive, in_list=False)


def expand_sources(sources: str | os.PathLike | Iterable[str | os.PathLike], *, recursive: bool = False) -> list[Item]:
    """The whole expansion as a list (see iter_sources)."""
    return list(iter_sources(sources, recursive=recursive))


def is_url(source) -> bool:
    return isinstance(source, str) and source.lower().startswith(URL_SCHEMES)


def read_url(url: str, *, max_bytes: int = MAX_URL_BYTES, timeout: float = 30.0, deadline: float = 120.0) -> bytes:
    """The bytes of an image URL (proxies from the environment); ImageError with one line on failure.

    `timeout` bounds each read, `deadline` the whole download; redirects obey the same URL policy."""
    import time
    import urllib.error

    from zoo.errors import WeightsError
    from zoo.pretrained.fetch import check_url, copy_limited, offline, open_url

    if offline():
        raise ImageError(f"ZOO_OFFLINE=1: not downloading {url}; download it and pass the file")
    try:
        check_url(url)  # the download policy of weights: https only, except loopback or ZOO_ALLOW_HTTP=1
    except WeightsError:
        raise ImageError(f"plain http is not fetched (use https, or ZOO_ALLOW_HTTP=1 for a trusted host): {url}") from None
    data = bytearray()
    try:
        with open_url(url, headers={"User-Agent": "zoo-predict"}, timeout=timeout) as response:
            copy_limited(response, data.extend, max_bytes=max_bytes, deadline=time.monotonic() + deadline, url=url)
    except urllib.error.HTTPError as exc:
        raise ImageError(f"HTTP {exc.code} {exc.reason}: {url}") from None
    except WeightsError as exc:
        text = str(exc)
        raise ImageError(f"larger than {max_bytes:,} bytes: {url}" if "larger than" in text else text) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ImageError(f"cannot download ({' '.join(str(reason).split())}): {url}") from None
    return bytes(data)


def _expand(source: str, *, recursive: bool, in_list: bool) -> Iterator[Item]:
    if is_url(source):
        yield source, None
        return
    path = Path(source).expanduser()
    if path.is_dir():
        images = list_images(path, recursive=recursive)
        if not images:
            hint = "" if recursive else " (add --recursive to look in subfolders)"
            yield source, f"folder holds no image files{hint}: {source}"
        for image in images:
            yield str(image), None
    elif path.is_file() and path.suffix.lower() == ".txt":
        if in_list:
            yield source, f"lists of lists are not read; put image paths in the list: {source}"
            return
        yield from _read_list(path, recursive=recursive)
    elif not path.exists() and any(ch in source for ch in _WILDCARDS):
        pattern = os.path.expanduser(source)
        matches = sorted(glob.iglob(pattern, recursive=recursive))
        files = [m for m in matches if Path(m).suffix.lower() in IMAGE_EXTENSIONS and Path(m).is_file()]
        if not files:
            yield source, f"no image file matches the pattern {source}"
        for match in files:
            yield match, None
    else:
        yield source, None


def _read_list(list_file: Path, *, recursive: bool) -> Iterator[Item]:
    try:
        fh = list_file.open(encoding="utf-8-sig")
    except OSError as exc:
        yield str(list_file), f"cannot read the list {list_file}: {exc.strerror or exc}"
        return
    with fh:
        try:
            for line in fh:
                entry = line.strip()
                if not entry or entry.startswith("#"):
                    continue
                entry_path = Path(entry).expanduser()
                if not entry_path.is_absolute() and not is_url(entry):
                    entry = str(list_file.parent / entry_path)
                yield from _expand(entry, recursive=recursive, in_list=True)
        except UnicodeDecodeError:
            yield str(list_file), f"the list is not UTF-8 text; write one image path a line: {list_file}"


MAX_STEM_BYTES = 160


def artefact_path(save_dir: str | os.PathLike, source: Any, *, suffix: str = ".png") -> Path:
    """A new file in save_dir named after the source ("cat.jpg" -> "cat.png"; "cat_1.png" when
    taken), so two inputs never overwrite each other's artefacts."""
    save_dir = Path(save_dir)
    stem = Path(str(source)).stem if isinstance(source, (str, os.PathLike)) else "image"
    stem = re.sub(r"[^\w.-]+", "_", stem) or "image"
    # File names are at most 255 bytes: keep the stem within MAX_STEM_BYTES of UTF-8 so the counter
    # and a suffix such as "_overlay.png" always fit.
    stem = stem.encode("utf-8")[:MAX_STEM_BYTES].decode("utf-8", "ignore") or "image"
    candidate = save_dir / f"{stem}{suffix}"
    n = 1
    while candidate.exists():
        candidate = save_dir / f"{stem}_{n}{suffix}"
        n += 1
    return candidate
