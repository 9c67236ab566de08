"""Model directories and the metadata that travels with every zoo model.

A model directory (written by `zoo finetune`, read by predict / evaluate / export) holds
`model.keras`, `metadata.json`, `history.csv`, `curves.png` and task plots. Models built by
`zoo.build` carry the same metadata in memory (`get_meta`), so predict treats a registry model
and a fine-tuned one alike: preprocessing, resize policy and labels always come from here.

metadata.json keys (all optional but `arch` and `task`):
    zoo_version, arch, task, labels (list[str]), input_shape [H, W, C],
    preprocessing {in_model: bool, mode, mean, std, scale, resize: "squash"|"crop"|"letterbox",
                   crop_pct}, weights {origin, sha256}, precision, strategy, data {...},
    metrics {...}, versions {tensorflow, keras, python}, plus task extras
    (detection: anchors; captioning: vocabulary, max_length; segmentation: ignore_index).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from zoo.errors import UsageError, ZooError

MODEL_FILE = "model.keras"
META_FILE = "metadata.json"


def attach_meta(model, meta: dict[str, Any]) -> None:
    # object.__setattr__ bypasses Keras attribute tracking: metadata is not model state.
    object.__setattr__(model, "_zoo_meta", dict(meta))


def get_meta(model) -> dict[str, Any]:
    return dict(getattr(model, "_zoo_meta", None) or {})


def versions() -> dict[str, str]:
    import platform

    out = {"python": platform.python_version()}
    try:
        import keras
        import tensorflow as tf

        out.update(tensorflow=tf.__version__, keras=keras.__version__)
    except Exception:  # versions are informative only
        pass
    from zoo import __version__

    out["zoo"] = __version__
    return out


def meta_for_build(spec, model, source) -> dict[str, Any]:
    """Metadata for a model fresh from `zoo.build`: its task, labels and preprocessing."""
    # Multi-input models (the captioner: image + tokens) report the image input, the first one.
    first = model.inputs[0].shape if getattr(model, "inputs", None) else None
    shape = [int(d) if d is not None else None for d in first[1:]] if first is not None else None
    meta: dict[str, Any] = {"arch": spec.name, "task": spec.task, "input_shape": shape}
    if source is not None:
        meta["labels"] = list(source.labels or [])
        meta["preprocessing"] = dict(source.preprocessing or {})
        meta["weights"] = {"origin": source.origin, "sha256": source.sha256}
    return meta


def save_model(model, path: str | os.PathLike) -> Path:
    """Save `model` as a .keras file atomically (temp file beside the target, then rename)."""
    from zoo.files import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        model.save(tmp)
    return path


def write_model_dir(model, out: str | os.PathLike, meta: dict[str, Any] | None = None) -> Path:
    """Write model.keras and metadata.json into `out` (other files are the trainer's)."""
    from zoo.files import write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {**get_meta(model), **(meta or {})}
    meta.setdefault("versions", versions())
    save_model(model, out / MODEL_FILE)
    write_text(out / META_FILE, json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
    attach_meta(model, meta)
    return out


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    meta_path = path / META_FILE if path.is_dir() else path.with_name(META_FILE)
    if not os.path.lexists(meta_path):
        return {}
    try:
        meta = json.loads(_read_capped(meta_path).decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad UTF-8 / JSON, 5000-digit numbers
        raise UsageError(f"{meta_path} is not valid JSON ({' '.join(str(exc).split())[:200]}). Re-create the model directory with `zoo finetune`.") from None
    if not isinstance(meta, dict):
        raise UsageError(f"{meta_path} must hold a JSON object. Re-create the model directory with `zoo finetune`.")
    from zoo.safety import check_meta

    return check_meta(meta, meta_path)


MAX_META_BYTES = 16 << 20  # a 10,000-word vocabulary and 1,000 labels take well under 1 MiB


def _read_capped(path: Path) -> bytes:
    """The bytes of metadata.json: a regular file (not a link, FIFO or device) of at most MAX_META_BYTES."""
    import stat

    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{path} must be a regular file inside the model directory (not a link, FIFO or device). "
                         f"Re-create the model directory with `zoo finetune`.")
    if info.st_size > MAX_META_BYTES:
        raise UsageError(f"{path} is {info.st_size} bytes; metadata is at most {MAX_META_BYTES}. "
                         f"Re-create the model directory with `zoo finetune`.")
    # O_NOFOLLOW | O_NONBLOCK: the name cannot be swapped for a link or FIFO between the check and the read.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise UsageError(f"{path} must be a regular file. Re-create the model directory with `zoo finetune`.")
        data = fh.read(MAX_META_BYTES + 1)
    if len(data) > MAX_META_BYTES:
        raise UsageError(f"{path} is larger than {MAX_META_BYTES} bytes. Re-create the model directory with `zoo finetune`.")
    return data


def _check_input_shape(model, meta: dict[str, Any], origin) -> None:
    """metadata.json's input_shape must be the model's own (where the model fixes a size)."""
    declared = meta.get("input_shape")
    try:
        actual = tuple(model.inputs[0].shape[1:])
    except (AttributeError, IndexError, TypeError):
        return
    if not declared or len(model.inputs) != 1 or len(actual) != len(declared):
        return
    if any(a is not None and d is not None and int(a) != int(d) for a, d in zip(actual, declared)):
        raise UsageError(f"{origin}: metadata.json says input_shape {list(declared)} but the model takes "
                         f"{[None if a is None else int(a) for a in actual]}. Fix `input_shape` or re-create the "
                         f"model directory.")


def custom_objects() -> dict[str, Any]:
    """Every Keras class zoo defines, so .keras files written by zoo load in safe mode."""
    from zoo.models import custom_objects as model_objects

    return dict(model_objects())


def find_model_file(path: str | os.PathLike) -> Path:
    """The .keras file of a model directory or .keras path, checked to exist (nothing is loaded)."""
    path = Path(path)
    if path.is_dir():
        model_file = path / MODEL_FILE
        if not model_file.exists():
            raise UsageError(f"{path} is not a zoo model directory: {MODEL_FILE} is missing. "
                             f"Point at a folder written by `zoo finetune` or at a .keras file.")
        return model_file
    if path.suffix == ".keras" and path.is_file():
        return path
    if not path.exists():
        raise UsageError(f"Model path {path} does not exist. Give a model directory, a .keras file or a registry name.")
    raise UsageError(f"{path} is neither a model directory nor a .keras file. Give one of those, or a registry "
                     f"name (`zoo list` shows them).")


def load_model(path: str | os.PathLike):
    """Load a model directory or a .keras file written by zoo (safe mode: no code from data)."""
    import keras

    path = Path(path)
    model_file = find_model_file(path)
    _check_archive(model_file)
    try:
        # compile=False: predict, evaluate and export need no optimizer, and the trainer compiles
        # afresh, so a custom loss or metric in the file's compile config never blocks loading.
        model = keras.saving.load_model(model_file, custom_objects=custom_objects(), safe_mode=True,
                                        compile=False)
    except ZooError:
        raise
    except Exception as exc:  # Keras raises ValueError, TypeError (unknown class), OSError, zip errors...
        # one line, without the layer config Keras appends; a nested error says what actually failed
        text = str(exc).rsplit("Exception encountered:", 1)[-1].split("Full object config")[0]
        reason = " ".join(text.split())[:400]
        raise UsageError(f"Cannot load {model_file} in safe mode ({type(exc).__name__}: {reason}). "
                         f"The file is damaged, or holds layers other than Keras's and zoo's (code, which safe mode "
                         f"never runs).") from None
    meta = read_meta(path)
    from zoo.safety import check_labels

    check_labels(model, meta, path)
    _check_input_shape(model, meta, path)
    attach_meta(model, meta)
    return model


def _check_archive(model_file: Path) -> None:
    """Before Keras unpacks a .keras zip: its members bounded (zoo.safety.check_zip) and its weights
    HDF5 self-contained and honest about its sizes (zoo.pretrained.formats.keras_h5.check_h5)."""
    import zipfile

    from zoo.pretrained.formats.keras_h5 import KERAS_ARCHIVE_WEIGHTS, check_h5
    from zoo.safety import check_zip

    try:
        with zipfile.ZipFile(model_file) as archive:
            check_zip(archive, model_file)
            if KERAS_ARCHIVE_WEIGHTS not in archive.namelist():
                return
            import h5py

            info = archive.getinfo(KERAS_ARCHIVE_WEIGHTS)
            with archive.open(info) as fh, h5py.File(fh, "r") as f:  # metadata only: a few seeks
                check_h5(f, model_file, file_size=info.file_size)
    except (zipfile.BadZipFile, OSError):
        pass  # Keras reports a damaged or unreadable file in load_model's one line


# --- model references: what `--model` / `model=` may name ---

MODEL_KINDS = ("model", "saved", "exported", "hub", "name")


def reference_kind(model: Any, *, hub: bool = False, exported: bool = False) -> str:
    """Which kind of model reference `model` is, without loading or building anything.

    Returns:
        "model" (a keras.Model), "saved" (a model directory or .keras file, checked to be one),
        "exported" (an artefact of `zoo export`: SavedModel folder, .tflite, .onnx; only where
        `exported` is allowed: predict and evaluate run it), "hub" ("hub:PATH", a TF-Hub /
        SavedModel feature extractor; only where `hub` is allowed: fine-tuning puts a head on it),
        or "name" (anything else; the registry checks the name).
    Raises:
        UsageError: an object that is no model, a path that holds no zoo model, or "hub:" where
            it cannot be used.
    """
    if not isinstance(model, (str, os.PathLike)):
        if not hasattr(model, "layers") or not callable(model):
            raise UsageError(f"`model` must be a registry name, a model directory, a .keras file or a keras.Model. "
                             f"Received: {type(model).__name__}.")
        return "model"
    text = os.fspath(model)
    if text.startswith("hub:"):
        if not hub:
            raise UsageError(f"{text} is a feature extractor without a head; fine-tune it first (`zoo finetune "
                             f"{text} DATA --out DIR`) and use DIR.")
        return "hub"
    # Anything that looks like a path is one: a typo in a path should say the path is missing,
    # not that no model has that name.
    from zoo.artefacts import artefact_format

    fmt = artefact_format(Path(text).expanduser())
    if fmt is not None:
        if not exported:
            raise UsageError(f"{text} is a {fmt} export: `zoo predict` and `zoo evaluate` take it; here give the "
                             f"model directory or .keras file it was exported from.")
        return "exported"
    if Path(text).expanduser().exists() or text.endswith(".keras") or os.sep in text or text.startswith("."):
        find_model_file(Path(text).expanduser())
        return "saved"
    return "name"


def resolve_model(model: Any, *, weights: str | None = None, task: str | None = None,
                  input_shape: tuple[int, ...] | None = None, exported: bool = False) -> tuple[Any, dict[str, Any]]:
    """(keras.Model, metadata) for a registry name, a model directory, a .keras file or a keras.Model.

    The one model resolution behind predict, evaluate, export and bench.

    Args:
        weights: registry names only: a manifest tag, a path or "none" (random weights). Default:
            zoo.registry.default_weights (with a warning when the model has none).
        task: the task of a plain keras.Model without zoo metadata (default "classification").
        input_shape: registry names only: build at this (H, W, C).
        exported: also take artefacts of `zoo export` (zoo.artefacts.ExportedModel; predict, evaluate).
    Returns:
        The model and its metadata (zoo.modeldir.get_meta), with "task" always set.
    """
    kind = reference_kind(model, exported=exported)
    if kind != "name":
        what = os.fspath(model) if kind in ("saved", "exported") else "this model"
        if weights is not None and str(weights).lower() != "none":
            raise UsageError(f"`weights` applies to registry names only; {what} already has its weights. "
                             f"Drop --weights.")
        if input_shape is not None:
            raise UsageError(f"`input_shape` applies to registry names only; {what} keeps its input size.")
    if kind == "model":
        keras_model = model
    elif kind == "saved":
        keras_model = load_model(Path(os.fspath(model)).expanduser())
    elif kind == "exported":
        from zoo.artefacts import ExportedModel

        keras_model = ExportedModel(Path(os.fspath(model)).expanduser())
    else:
        import zoo
        from zoo.registry import default_weights

        name = os.fspath(model)
        if weights is None:
            weights = default_weights(name, warn=True)
        keras_model = zoo.build(name, weights=weights, input_shape=input_shape)
    meta = get_meta(keras_model)
    meta["task"] = meta.get("task") or task or "classification"
    return keras_model, meta
