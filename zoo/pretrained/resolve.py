"""`weights=` -> a WeightsSource: a local, verified file plus everything the weights impose.

`weights` is a manifest tag ("imagenet", "tv_in1k", "fashion_mnist"), a path to a weights file
in any supported format, or an https URL. For a path, the format is read from the file, the
number of classes from its head, and the architecture options and preprocessing from its
format, as the model's family declares it (zoo.models.<family>.PRETRAINED: keras.applications
ResNet files need Keras's v1 and "caffe" input, torchvision's v1.5 and "torch" input). A file whose
checksum matches a manifest row inherits that row.

zoo.registry hands over what is needed about the model: its registry row (name, default classes
and input) and its family's PretrainedSpec; this package never imports the registry or a family.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.preprocessing import adapt_preprocessing  # noqa: F401  (the one rule per channel count)

from zoo.errors import UsageError, WeightsError, ZooError
from zoo.pretrained import manifest

WEIGHT_SUFFIXES = (".h5", ".hdf5", ".keras", ".safetensors", ".pth", ".pt", ".bin", ".ckpt")



@dataclass
class WeightsSource:
    arch: str  # registry name the weights are for
    tag: str | None  # manifest tag, None for a file given by path
    origin: str  # the tag ("resnet50.imagenet") or the path / URL the user gave
    path: Path  # local file, verified
    format: str  # "keras" | "keras_legacy_h5" | "safetensors" | "torch"
    sha256: str
    num_classes: int  # classes of the head in the file (the registry default when the file has none)
    labels: list[str] | None
    preprocessing: dict[str, Any] | None  # mode, scale, mean, std, channel_order; None = the family's default
    input_shape: tuple[int, int, int] | None
    include_top: bool  # does the file hold the classifier head
    arch_options: dict[str, Any] = field(default_factory=dict)  # options the weights need (ResNet style...)
    metrics: dict[str, Any] = field(default_factory=dict)
    licence: str | None = None
    pretrained: Any = None  # the family's PretrainedSpec: how torch names map onto its layers


def file_digests(path: Path) -> tuple[str, str]:
    """(sha256, md5) of a file in one pass."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha.update(chunk)
            md5.update(chunk)
    return sha.hexdigest(), md5.hexdigest()


def _preprocessing(row_pre: dict[str, Any] | None, mode: str | None) -> dict[str, Any] | None:
    if row_pre is not None:
        return dict(row_pre)
    if mode is None:
        return None
    from zoo.pretrained.presets import PREPROCESSING

    return dict(PREPROCESSING[mode])


def _looks_like_path(weights: str) -> bool:
    return os.sep in weights or weights.startswith(("~", ".")) or weights.lower().endswith(WEIGHT_SUFFIXES)


def resolve_weights(spec, weights: str | os.PathLike, *, pretrained, include_top: bool = True,
                    input_shape: tuple[int, ...] | None = None) -> WeightsSource:
    """Resolve `weights` for a model, adapting preprocessing to `input_shape`'s channels.

    Args:
        spec: the model's registry row (zoo.registry.ModelSpec: name, classes, input_shape).
        weights: a manifest tag, a local file path or an https URL.
        pretrained: its family's PretrainedSpec (zoo.models.<family>.PRETRAINED).
        include_top: False prefers the manifest's file without head when there is one.
        input_shape: the model's input; its channels adapt the weights' preprocessing.
    Returns:
        WeightsSource describing a local, checksum-verified file.
    """
    try:
        source = _resolve(spec, weights, pretrained=pretrained, include_top=include_top)
    except (ZooError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # h5py's OSError, safetensors' SafetensorError... on a damaged file
        raise WeightsError(f"Cannot read weights {os.fspath(weights)} ({type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:300]}): the file is damaged or not weights. "
                           f"Download or save it again.") from None
    if input_shape is not None and len(tuple(input_shape)) == 3:
        source.preprocessing = adapt_preprocessing(source.preprocessing, int(tuple(input_shape)[-1]))
    source.pretrained = pretrained
    return source


def _resolve(spec, weights: str | os.PathLike, *, pretrained, include_top: bool = True) -> WeightsSource:
    """resolve_weights without the error wrapping; downloads (verified, cached) when needed."""
    text = os.fspath(weights)
    row = manifest.get_row(spec.name, text)
    if row is not None:
        return _from_row(spec, row, include_top=include_top)
    if text.startswith(("https://", "http://")):
        from zoo.pretrained.fetch import fetch_url

        path = fetch_url(text)
        return _from_file(spec, pretrained, path, origin=text)
    path = Path(text).expanduser()
    if path.is_file():
        return _from_file(spec, pretrained, path, origin=text)
    if path.exists():
        raise UsageError(f"weights={text!r} is a folder, not a weights file. Give the file itself "
                         f"(.weights.h5, .h5, .safetensors, .pth).")
    tags = manifest.tags_for(spec.name)
    if _looks_like_path(text):
        raise UsageError(f"Weights file {text} does not exist. Check the path, or use a tag of {spec.name}: "
                         f"{', '.join(tags) or 'none in the manifest'}.")
    raise UsageError(f"{spec.name} has no weights tagged {text!r}. Tags: {', '.join(tags) or 'none'}. "
                     f"Or give a path to a weights file. `zoo info {spec.name}` lists them with metrics.")


def _from_row(spec, row: dict[str, Any], *, include_top: bool) -> WeightsSource:
    part = row
    top = row.get("include_top", True)
    if not include_top and "notop" in row:
        part, top = row["notop"], False
    if "file" in part:
        path = _shipped_file(row, part)
    else:
        from zoo.pretrained.fetch import fetch_row

        path = fetch_row(row, part)
    fmt = row["format"]
    from zoo.pretrained.formats import detect_format

    detected = detect_format(path)
    if detected != fmt:
        raise WeightsError(f"{path} (weights {row['arch']}.{row['tag']}) is in {detected} format, but the manifest "
                           f"says {fmt}. Fix the manifest row {row['manifest']}.")
    sha256 = part.get("sha256") or file_digests(path)[0]
    labels = manifest.read_labels(row.get("labels")) if top else None
    return WeightsSource(
        arch=spec.name, tag=row["tag"], origin=f"{spec.name}.{row['tag']}", path=path, format=fmt, sha256=sha256,
        num_classes=row["classes"] if top else spec.classes, labels=labels,
        preprocessing=None if row["preprocessing"]["mode"] == "default" else dict(row["preprocessing"]),
        input_shape=tuple(row["input_size"]), include_top=top,
        arch_options=dict(row.get("arch_options", {})), metrics=dict(row.get("metrics", {})),
        licence=row.get("licence"),
    )


def _shipped_file(row: dict[str, Any], part: dict[str, Any]) -> Path:
    path = Path(part["file"]).expanduser()
    if not path.is_absolute():
        path = manifest.shipped_path(part["file"])
    if not path.is_file():
        raise WeightsError(f"Weights {row['arch']}.{row['tag']}: file {path} is missing from the installation. "
                           f"Reinstall zoo, or re-create it with the recipe in scripts/.")
    expected = part.get("sha256")
    if expected:
        got = file_digests(path)[0]
        if got != expected:
            raise WeightsError(f"Weights {row['arch']}.{row['tag']}: {path} has sha256 {got}, the manifest says "
                               f"{expected}. The file is damaged or was replaced: reinstall zoo or re-run its recipe.")
    return path


def _from_file(spec, pretrained, path: Path, *, origin: str) -> WeightsSource:
    from zoo.pretrained.formats import detect_format
    from zoo.pretrained.inspect import head_classes, implied_options

    fmt = detect_format(path)
    sha256, md5 = file_digests(path)
    for row in manifest.rows_for(spec.name):
        for part, top in ((row, row.get("include_top", True)), (row.get("notop"), False)):
            if part and (part.get("sha256") == sha256 or part.get("md5") == md5
                         or (part.get("sha256_prefix") and sha256.startswith(part["sha256_prefix"]))):
                source = _from_row(spec, {**row, "notop": part} if not top else row, include_top=top)
                source.path, source.origin = path, origin
                return source
    classes = head_classes(path, fmt)
    kind = "keras" if fmt in ("keras", "keras_legacy_h5") else "torch"
    mode, options = pretrained.file_defaults.get(kind, (None, {})) if pretrained is not None else (None, {})
    if fmt == "keras":
        # zoo's own files: the options are read from the file itself (e.g. conv bias = Keras ResNet).
        mode, options = None, implied_options(pretrained, path, fmt)
    labels = manifest.read_labels("imagenet") if classes == 1000 else None
    return WeightsSource(
        arch=spec.name, tag=None, origin=origin, path=path, format=fmt, sha256=sha256,
        num_classes=classes or spec.classes, labels=labels, preprocessing=_preprocessing(None, mode),
        input_shape=None, include_top=classes is not None, arch_options=dict(options),
    )
