"""The weights manifest: weights/manifest.toml (shipped) plus user manifests from ZOO_MANIFEST.

Read with tomllib only (no TensorFlow), so `zoo list --pretrained` stays instant. Every row is
validated against SCHEMA when the manifest is read; a bad row names its file, key and field.

A row (TOML table `[arch.tag]`):
    format        "keras" | "keras_legacy_h5" | "safetensors" | "torch"
    file          path inside the shipped weights folder (`shipped_path`), or
    urls          list of https URLs (mirrors, tried in order)
    sha256 | md5 | sha256_prefix   checksum of the file (sha256_prefix: torchvision's filename
                  prefix, at least 8 hex digits); rows without one must say `pin = true`
                  (the sha256 is then pinned on first download and checked ever after)
    size          bytes, when known
    filename      name of the file in the cache (default: the URL's last part)
    classes       number of classes of the head
    labels        labels file in the shipped weights/labels ("imagenet" -> labels/imagenet.txt)
    input_size    [H, W, C] the weights were trained at
    include_top   whether the file holds the classifier head (default true)
    preprocessing {mode, scale, mean, std, channel_order, resize, crop_pct, interpolation};
                  mode "default" = the family's own default (rows written by `zoo weights import`)
    arch_options  architecture options the weights need, e.g. {style = "torchvision"}
    licence, source, metrics {top1, top5, accuracy, ...}, notes
    notop         optional sub-table with urls/checksum/size/filename of the file without head
"""

from __future__ import annotations

import os
import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from zoo.errors import UsageError

FORMATS = ("keras", "keras_legacy_h5", "safetensors", "torch")
CHANNEL_ORDERS = ("rgb", "bgr")
RESIZES = ("squash", "crop", "letterbox")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")

# field -> (python types, required)
SCHEMA: dict[str, tuple[tuple[type, ...], bool]] = {
    "format": ((str,), True),
    "file": ((str,), False),
    "urls": ((list,), False),
    "sha256": ((str,), False),
    "md5": ((str,), False),
    "sha256_prefix": ((str,), False),
    "pin": ((bool,), False),
    "size": ((int,), False),
    "filename": ((str,), False),
    "classes": ((int,), True),
    "labels": ((str,), False),
    "input_size": ((list,), True),
    "include_top": ((bool,), False),
    "preprocessing": ((dict,), True),
    "arch_options": ((dict,), False),
    "licence": ((str,), True),
    "source": ((str,), True),
    "metrics": ((dict,), False),
    "notes": ((str,), False),
    "notop": ((dict,), False),
}
PREPROCESSING_KEYS = ("mode", "scale", "mean", "std", "channel_order", "resize", "crop_pct", "interpolation")
_HEX = re.compile(r"^[0-9a-f]+$")


def shipped_path(relative: str = "") -> Path:
    """A file of the shipped weights folder: the manifest, label lists and weights zoo ships.

    In a checkout they are the top-level weights/ folder; a wheel installs that folder as
    zoo/weights (pyproject's package-dir mapping), so an installed zoo finds them offline.
    """
    package = Path(__file__).resolve().parents[1]
    installed = package / "weights"
    folder = installed if (installed / "manifest.toml").is_file() else package.parent / "weights"
    return folder / relative if relative else folder


def _builtin_text() -> str:
    return shipped_path("manifest.toml").read_text(encoding="utf-8")


def _fail(origin: str, key: str, message: str) -> None:
    raise UsageError(f"Weights manifest {origin}, row [{key}]: {message} Fix the row or remove it from ZOO_MANIFEST.")


def _check_file_fields(origin: str, key: str, row: dict[str, Any], *, part: str = "") -> None:
    """The download/checksum fields, shared by a row and its `notop` sub-table."""
    where = f"{part}." if part else ""
    has_file, has_urls = "file" in row, "urls" in row
    if has_file == has_urls:
        _fail(origin, key, f"needs exactly one of `{where}file` (shipped) or `{where}urls` (download).")
    if has_urls:
        urls = row["urls"]
        if not urls or not all(isinstance(u, str) and re.match(r"^[a-z][a-z0-9+.-]*://", u) for u in urls):
            _fail(origin, key, f"`{where}urls` must be a non-empty list of URLs. Received: {urls!r}.")
    sums = {"sha256": 64, "md5": 32}
    for name, length in sums.items():
        value = row.get(name)
        if value is not None and (len(value) != length or not _HEX.match(value)):
            _fail(origin, key, f"`{where}{name}` must be {length} lower-case hex digits. Received: {value!r}.")
    prefix = row.get("sha256_prefix")
    if prefix is not None and (not 8 <= len(prefix) <= 64 or not _HEX.match(prefix)):
        _fail(origin, key, f"`{where}sha256_prefix` must be 8 to 64 lower-case hex digits. Received: {prefix!r}.")
    if not any(row.get(n) for n in ("sha256", "md5", "sha256_prefix")) and not row.get("pin", False):
        _fail(origin, key, f"needs a checksum (`{where}sha256`, `{where}md5` or `{where}sha256_prefix`), "
                           f"or `pin = true` to pin the sha256 on first download.")
    if "size" in row and (not isinstance(row["size"], int) or row["size"] <= 0):
        _fail(origin, key, f"`{where}size` must be a positive number of bytes. Received: {row['size']!r}.")


def validate_row(origin: str, key: str, row: dict[str, Any]) -> None:
    """Raise UsageError naming the manifest, the row and the field when `row` breaks SCHEMA."""
    for name, value in row.items():
        if name in ("arch", "tag", "manifest"):
            continue
        if name not in SCHEMA:
            _fail(origin, key, f"unknown field `{name}`. Known fields: {', '.join(SCHEMA)}.")
        types, _ = SCHEMA[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            _fail(origin, key, f"`{name}` must be of type {'/'.join(t.__name__ for t in types)}. Received: {value!r}.")
    for name, (_, required) in SCHEMA.items():
        if required and name not in row:
            _fail(origin, key, f"missing required field `{name}`.")
    if row["format"] not in FORMATS:
        _fail(origin, key, f"`format` must be one of {', '.join(FORMATS)}. Received: {row['format']!r}.")
    _check_file_fields(origin, key, row)
    if "notop" in row:
        notop = row["notop"]
        unknown = set(notop) - {"urls", "file", "sha256", "md5", "sha256_prefix", "pin", "size", "filename"}
        if unknown:
            _fail(origin, key, f"unknown field(s) in `notop`: {', '.join(sorted(unknown))}.")
        for name, value in notop.items():  # the same types as in the row itself
            types, _ = SCHEMA[name]
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                _fail(origin, key, f"`notop.{name}` must be of type {'/'.join(t.__name__ for t in types)}. Received: {value!r}.")
        _check_file_fields(origin, key, notop, part="notop")
    if row["classes"] < 1:
        _fail(origin, key, f"`classes` must be >= 1. Received: {row['classes']!r}.")
    size = row["input_size"]
    if len(size) != 3 or not all(isinstance(d, int) and d > 0 for d in size):
        _fail(origin, key, f"`input_size` must be [H, W, C] positive integers. Received: {size!r}.")
    pre = row["preprocessing"]
    unknown = set(pre) - set(PREPROCESSING_KEYS)
    if unknown:
        _fail(origin, key, f"unknown preprocessing key(s) {', '.join(sorted(unknown))}; known: {', '.join(PREPROCESSING_KEYS)}.")
    if not isinstance(pre.get("mode"), str):
        _fail(origin, key, "`preprocessing.mode` is required (a name such as 'torch', 'caffe', 'tf', 'unit').")
    channels = size[2]
    for name in ("mean", "std"):
        if name in pre:
            values = pre[name]
            if not isinstance(values, list) or len(values) != channels or not all(isinstance(v, (int, float)) for v in values):
                _fail(origin, key, f"`preprocessing.{name}` must list {channels} numbers (one per channel). Received: {values!r}.")
            if name == "std" and any(v <= 0 for v in values):
                _fail(origin, key, f"`preprocessing.std` must be positive. Received: {values!r}.")
    if "scale" in pre and (not isinstance(pre["scale"], (int, float)) or pre["scale"] <= 0):
        _fail(origin, key, f"`preprocessing.scale` must be a positive number. Received: {pre['scale']!r}.")
    for name, allowed in (("channel_order", CHANNEL_ORDERS), ("resize", RESIZES), ("interpolation", INTERPOLATIONS)):
        if name in pre and pre[name] not in allowed:
            _fail(origin, key, f"`preprocessing.{name}` must be one of {', '.join(allowed)}. Received: {pre[name]!r}.")
    if "crop_pct" in pre and not (isinstance(pre["crop_pct"], (int, float)) and 0 < pre["crop_pct"] <= 1):
        _fail(origin, key, f"`preprocessing.crop_pct` must be in (0, 1]. Received: {pre['crop_pct']!r}.")


def _parse(origin: str, text: str) -> dict[str, dict[str, Any]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"Weights manifest {origin} is not valid TOML ({exc}). Fix the file or remove it from ZOO_MANIFEST.") from None
    rows: dict[str, dict[str, Any]] = {}
    for arch, tags in data.items():
        if not isinstance(tags, dict) or not all(isinstance(r, dict) for r in tags.values()):
            raise UsageError(f"Weights manifest {origin}: [{arch}] must hold tables [{arch}.TAG]. "
                             f"Write each row as [arch.tag] with its fields.")
        for tag, row in tags.items():
            key = f"{arch}.{tag}"
            validate_row(origin, key, row)
            rows[key] = {**row, "arch": arch, "tag": tag, "manifest": origin}
    return rows


def imported_manifest() -> Path:
    """$ZOO_HOME/manifest.toml: the rows `zoo weights import` writes (read after the shipped ones)."""
    from zoo.pretrained.fetch import zoo_home

    return zoo_home() / "manifest.toml"


@lru_cache(maxsize=8)
def _load(extra: str, home: str, home_mtime: int) -> dict[str, dict[str, Any]]:
    rows = _parse(str(shipped_path("manifest.toml")), _builtin_text())
    parts = ([home] if home_mtime else []) + list(filter(None, extra.split(os.pathsep)))
    for part in parts:
        path = Path(part).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:  # a binary or latin-1 file is unreadable too
            raise UsageError(f"ZOO_MANIFEST names {part}, which cannot be read ({getattr(exc, 'strerror', None) or exc}). "
                             f"Fix the path or unset ZOO_MANIFEST.") from None
        # User rows override shipped ones with the same arch.tag: a local mirror wins.
        rows.update(_parse(str(path), text))
    return rows


def rows() -> dict[str, dict[str, Any]]:
    """Every manifest row keyed "arch.tag": shipped, then imported ($ZOO_HOME), then ZOO_MANIFEST files."""
    home = imported_manifest()
    try:
        mtime = home.stat().st_mtime_ns
    except OSError:
        mtime = 0
    return _load(os.environ.get("ZOO_MANIFEST", ""), str(home), mtime)


def get_row(arch: str, tag: str) -> dict[str, Any] | None:
    return rows().get(f"{arch}.{tag}")


def tags_for(arch: str) -> list[str]:
    return sorted(r["tag"] for r in rows().values() if r["arch"] == arch)


def rows_for(arch: str) -> list[dict[str, Any]]:
    return [r for key, r in sorted(rows().items()) if r["arch"] == arch]


def read_labels(name: str | None) -> list[str] | None:
    """Class names from the shipped labels/<name>.txt (one per line, in index order)."""
    if not name:
        return None
    file = name if name.endswith(".txt") else f"{name}.txt"
    text = shipped_path(f"labels/{file}").read_text(encoding="utf-8")
    return [line.rstrip("\n") for line in text.splitlines() if line.strip()]

