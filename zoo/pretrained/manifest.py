"""The weights manifest: zoo/weights/manifest.toml plus user manifests from ZOO_MANIFEST.

Read with tomllib only (no TensorFlow), so `zoo list --pretrained` stays instant.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any


def _builtin_text() -> str:
    return resources.files("zoo.weights").joinpath("manifest.toml").read_text(encoding="utf-8")


@lru_cache(maxsize=8)
def _load(extra: str) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    texts = [("zoo/weights/manifest.toml", _builtin_text())]
    for part in filter(None, extra.split(":")):
        texts.append((part, Path(part).read_text(encoding="utf-8")))
    for origin, text in texts:
        data = tomllib.loads(text)
        for arch, tags in data.items():
            for tag, row in tags.items():
                rows[f"{arch}.{tag}"] = {**row, "arch": arch, "tag": tag, "manifest": origin}
    return rows


def rows() -> dict[str, dict[str, Any]]:
    """Every manifest row keyed "arch.tag"."""
    return _load(os.environ.get("ZOO_MANIFEST", ""))


def tags_for(arch: str) -> list[str]:
    return sorted(r["tag"] for r in rows().values() if r["arch"] == arch)


def rows_for(arch: str) -> list[dict[str, Any]]:
    return [r for key, r in sorted(rows().items()) if r["arch"] == arch]
