"""Which format a weights file is in, from its first bytes (never from its name)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from zoo.errors import WeightsError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"


def _is_safetensors(head: bytes, size: int) -> bool:
    # 8-byte little-endian header length, then a JSON object of that many bytes.
    if len(head) < 10:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def _hdf5_layout(path: Path) -> str:
    from zoo.pretrained.formats.keras_h5 import open_h5

    with open_h5(path) as f:
        root = f["model_weights"] if "model_weights" in f else f
        if "layer_names" in root.attrs:
            return "keras_legacy_h5"
        if "layers" in f or "vars" in f:
            return "keras"
    raise WeightsError(
        f"{path} is an HDF5 file but neither a Keras 3 .weights.h5 (groups 'layers/...') nor a legacy "
        f"Keras weights file (attribute 'layer_names'). Save it with model.save_weights()."
    )


def detect_format(path: str | Path) -> str:
    """"keras" | "keras_legacy_h5" | "safetensors" | "torch", read from the file's contents.

    "keras" covers zoo's .weights.h5 and the weights inside a .keras model archive."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
        size = path.stat().st_size
    except OSError as exc:
        raise WeightsError(f"Cannot read weights file {path}: {exc.strerror}.") from None
    if head.startswith(HDF5_SIGNATURE):
        return _hdf5_layout(path)
    if head.startswith(ZIP_SIGNATURE):
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile:
            raise WeightsError(f"{path} is a damaged zip file. Download or save it again.") from None
        # A Keras 3 .keras archive carries its weights as model.weights.h5 (the Keras 3 layout).
        return "keras" if "model.weights.h5" in names else "torch"  # else torch.save's zip (PyTorch >= 1.6)
    if _is_safetensors(head, size):
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            try:
                json.loads(fh.read(n))
            except ValueError:
                raise WeightsError(f"{path} looks like safetensors but its header is not valid JSON: "
                                   f"the file is damaged. Download it again.") from None
        return "safetensors"
    if head[:1] == b"\x80":
        return "torch"  # legacy torch.save pickle stream: readable only through torch.load(weights_only=True)
    raise WeightsError(
        f"{path} is not a weights file zoo can read (first bytes {head[:8]!r}). Supported: Keras .weights.h5, "
        f"legacy Keras .h5, .safetensors, torch .pth/.pt."
    )
