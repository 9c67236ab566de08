"""The weights cache as `zoo weights list | fetch | verify | import` sees it (the CLI only prints)."""

from __future__ import annotations

import os
import shutil
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import UsageError, WeightsError
from zoo.pretrained import fetch as F
from zoo.pretrained import manifest


def _parts(row: dict[str, Any]):
    yield row, row.get("include_top", True)
    if row.get("notop"):
        yield row["notop"], False


def part_filename(part: dict[str, Any]) -> str | None:
    if "filename" in part:
        return part["filename"]
    if "urls" in part:
        return urllib.parse.urlsplit(part["urls"][0]).path.rsplit("/", 1)[-1]
    return None


def cached_path(part: dict[str, Any]) -> Path | None:
    """Where the file of a row part is, if it is on this machine (zoo cache, Keras cache, or shipped)."""
    if "file" in part:
        path = Path(part["file"]).expanduser()
        path = path if path.is_absolute() else manifest.shipped_path(part["file"])
        return path if path.is_file() else None
    name = part_filename(part)
    for folder in [F.cache_dir(), *F.keras_cache_dirs()]:
        if name and (folder / name).is_file():
            return folder / name
    return None


def list_rows(arch: str | None = None) -> list[dict[str, Any]]:
    """Manifest rows (optionally of one arch) with `cached` (path or None) and `notop_cached`."""
    out = []
    for key, row in sorted(manifest.rows().items()):
        if arch and row["arch"] != arch:
            continue
        item = {"key": key, **row, "cached": cached_path(row)}
        if row.get("notop"):
            item["notop_cached"] = cached_path(row["notop"])
        out.append(item)
    return out


def fetch_weights(spec: str, *, sha256: str | None = None, md5: str | None = None, notop: bool = False,
                  allow_http: bool = False, progress: bool | None = None, max_bytes: int | None = None) -> Path:
    """Fetch "ARCH.TAG" (from the manifest) or a URL (with its checksum) into the cache; return the path."""
    if spec.startswith(("https://", "http://")):
        return F.fetch_url(spec, sha256=sha256, md5=md5, allow_http=allow_http, progress=progress,
                           max_bytes=max_bytes)
    if sha256 or md5:
        raise UsageError(f"--sha256/--md5 apply to URLs only; manifest rows carry their own checksum. Received: {spec}.")
    arch, _, tag = spec.partition(".")
    row = manifest.get_row(arch, tag)
    if row is None:
        keys = sorted(manifest.rows())
        raise UsageError(f"No weights {spec!r} in the manifest. Use ARCH.TAG (e.g. {keys[0] if keys else 'resnet50.imagenet'}) "
                         f"or an https URL; `zoo weights list` shows them all.")
    part = row["notop"] if notop and row.get("notop") else row
    if notop and not row.get("notop"):
        raise UsageError(f"{spec} has no separate file without head. Drop --notop.")
    if "file" in part:
        from zoo.pretrained.resolve import _shipped_file

        return _shipped_file(row, part)
    return F.fetch_row(row, part, progress=progress)


@dataclass
class CacheEntry:
    path: Path
    status: str  # "ok" | "corrupt" | "unverified"
    detail: str


def _expected_checksums() -> dict[str, F.Checksum]:
    sums: dict[str, F.Checksum] = {}
    for row in manifest.rows().values():
        for part, _ in _parts(row):
            name = part_filename(part)
            if name and "file" not in part:
                sums[name] = F.Checksum(part.get("sha256"), part.get("md5"), part.get("sha256_prefix"),
                                        bool(part.get("pin")))
            elif "file" in part and Path(part["file"]).is_absolute():  # imported files
                sums[Path(part["file"]).name] = F.Checksum(part.get("sha256"))
    return sums


def verify_cache() -> list[CacheEntry]:
    """Check every file of the zoo cache (and imported files) against its manifest checksum or pin."""
    sums = _expected_checksums()
    files = F.cached_files() + sorted((F.cache_dir() / "imported").glob("*")) if F.cache_dir().exists() else []
    entries = []
    for path in files:
        if not path.is_file() or path.name.endswith(".sha256") or path.name.startswith("."):
            continue
        checksum = sums.get(path.name)
        if checksum is None and F.pin_file(path).exists():
            checksum = F.Checksum(pin=True)
        if checksum is None:
            entries.append(CacheEntry(path, "unverified", "no manifest row or pinned sha256 names this file"))
            continue
        problem = checksum.check(path)
        entries.append(CacheEntry(path, "ok" if problem is None else "corrupt", problem or checksum.describe()))
    return entries


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def import_weights(path: str | os.PathLike, *, spec, pretrained, tag: str, force: bool = False) -> dict[str, Any]:
    """Copy a weights file into the cache and register it as ARCH.TAG in $ZOO_HOME/manifest.toml.

    The format, classes and the options the weights need are read from the file, as for
    `zoo.build(arch, weights=path)`; afterwards `weights=TAG` works offline on this machine.
    `spec` is the model's registry row and `pretrained` its family's PretrainedSpec (by name:
    zoo.registry.import_weights).
    """
    import re

    from zoo.pretrained.resolve import resolve_weights

    if not re.fullmatch(r"[a-z0-9_]+", tag):
        raise UsageError(f"A tag is lower-case letters, digits and '_'. Received: --tag {tag!r}.")
    src = Path(path).expanduser()
    if not src.is_file():
        raise UsageError(f"{src} is not a file. Give the weights file to import.")
    existing = manifest.get_row(spec.name, tag)
    if existing is not None and not (force and existing["manifest"] == str(manifest.imported_manifest())):
        raise UsageError(f"{spec.name}.{tag} already exists (in {existing['manifest']}). Choose another --tag"
                         + (", or --force to replace your import." if existing["manifest"] == str(manifest.imported_manifest()) else "."))
    source = resolve_weights(spec, str(src), pretrained=pretrained)
    folder = F.cache_dir() / "imported"
    folder.mkdir(parents=True, exist_ok=True)
    suffix = "".join(src.suffixes[-2:]) if src.name.endswith(".weights.h5") else src.suffix
    target = folder / f"{spec.name}.{tag}{suffix}"
    from zoo.files import atomic_path

    with atomic_path(target) as tmp:
        shutil.copyfile(src, tmp)
        if F.sha256_of(tmp) != source.sha256:
            raise WeightsError(f"{src} changed while it was copied. Import it again.")
    pre = source.preprocessing or {"mode": "default"}  # "default": the family's own preprocessing
    channels = spec.input_shape[2]
    if any(len(pre.get(k, [0] * channels)) != channels for k in ("mean", "std")):
        pre = {k: v for k, v in pre.items() if k not in ("mean", "std")}
    row = {"format": source.format, "file": str(target), "sha256": source.sha256, "size": target.stat().st_size,
           "classes": source.num_classes, "input_size": list(source.input_shape or spec.input_shape),
           "include_top": source.include_top, "preprocessing": pre,
           "licence": "unknown (imported by the user)", "source": f"zoo weights import {src}"}
    if source.labels and len(source.labels) == 1000:
        row["labels"] = "imagenet"
    if source.arch_options:
        row["arch_options"] = source.arch_options
    manifest.validate_row(str(manifest.imported_manifest()), f"{spec.name}.{tag}", row)
    _write_imported_row(spec.name, tag, row)
    return {"key": f"{spec.name}.{tag}", **row}


def _write_imported_row(arch: str, tag: str, row: dict[str, Any]) -> None:
    import tomllib

    from zoo.files import write_text

    path = manifest.imported_manifest()
    path.parent.mkdir(parents=True, exist_ok=True)
    with F.file_lock(path):
        data = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        data.setdefault(arch, {})[tag] = row
        lines = ["# Weights imported with `zoo weights import` (read by zoo after its shipped manifest).", ""]
        for a, tags in sorted(data.items()):
            for t, r in sorted(tags.items()):
                lines.append(f"[{a}.{t}]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in r.items()]
                lines.append("")
        write_text(path, "\n".join(lines))
