"""Readers for Keras HDF5 weights: Keras 3 `.weights.h5` and the legacy layout of keras.applications."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo.errors import WeightsError

KERAS_ARCHIVE_WEIGHTS = "model.weights.h5"  # the weights inside a Keras 3 .keras zip


def open_h5(path: str | Path):
    """h5py.File for a .h5 file, or for the weights inside a .keras archive (read in memory, never unpickled)."""
    import io
    import zipfile

    import h5py

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return h5py.File(io.BytesIO(archive.read(KERAS_ARCHIVE_WEIGHTS)), "r")
    return h5py.File(path, "r")


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_legacy(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Legacy layout (tf.keras `save_weights('x.h5')`, keras.applications files): one group per
    layer name with attribute `weight_names` giving the order of its datasets.

    Keras 2 named some layers with a slash ("conv1/conv" in DenseNet); Keras 3 and zoo use "_".
    """
    out: dict[str, list[np.ndarray]] = {}
    with open_h5(path) as f:
        root = f["model_weights"] if "model_weights" in f else f
        for layer_name in (_text(n) for n in root.attrs["layer_names"]):
            group = root[layer_name]
            names = [_text(n) for n in group.attrs.get("weight_names", [])]
            if names:
                out[layer_name.replace("/", "_")] = [np.asarray(group[n]) for n in names]
    return out


def keras3_keys(model) -> dict[str, object]:
    """The key Keras 3 gives each layer of `model` in a .weights.h5 file.

    Keras 3 names layers in the file by class (conv2d, conv2d_1, ...) in `model.layers` order,
    not by layer name, so the key of a layer depends only on the layers of its class before it.
    """
    from keras.src.utils.naming import to_snake_case

    counts: dict[str, int] = {}
    keys: dict[str, object] = {}
    for layer in model.layers:
        base = to_snake_case(type(layer).__name__)
        if base in counts:
            counts[base] += 1
            key = f"{base}_{counts[base]}"
        else:
            counts[base] = 0
            key = base
        keys[key] = layer
    return keys


def read_keras3(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Keras 3 layout: `layers/<class key>/vars/<i>`; keys as in `keras3_keys`."""
    out: dict[str, list[np.ndarray]] = {}
    with open_h5(path) as f:
        if "layers" not in f:
            raise WeightsError(f"{path} has no 'layers' group: it was not written by a Keras 3 functional model.")
        for key, group in f["layers"].items():
            if "vars" not in group:
                continue
            arrays = [np.asarray(group["vars"][str(i)]) for i in range(len(group["vars"]))]
            if arrays:
                out[key] = arrays
    return out


def read_keras3_for(path: str | Path, model) -> tuple[dict[str, list[np.ndarray]], list[str]]:
    """Keras 3 file -> {layer_name: arrays} for `model`; also the file keys no layer claims."""
    by_key = read_keras3(path)
    keys = keras3_keys(model)
    out, unused = {}, []
    for key, arrays in by_key.items():
        layer = keys.get(key)
        if layer is None:
            unused.append(key)
        else:
            out[layer.name] = arrays
    return out, unused
