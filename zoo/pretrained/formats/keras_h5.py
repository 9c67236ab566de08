"""Readers for Keras HDF5 weights: Keras 3 `.weights.h5` and the legacy layout of keras.applications."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo.errors import WeightsError

KERAS_ARCHIVE_WEIGHTS = "model.weights.h5"  # the weights inside a Keras 3 .keras zip


# gzip, HDF5's usual filter, cannot shrink data much beyond 1032:1; a dataset declaring more bytes
# than that times what it stores is filled from nothing (the fill value): a memory bomb.
MAX_INFLATE = 1100
MAX_OBJECTS = 200_000  # groups + datasets walked before a file is judged hostile


def open_h5(path: str | Path):
    """h5py.File for a .h5 file, or for the weights inside a .keras archive (read in memory, never
    unpickled), checked by `check_h5` before any dataset is read."""
    import io
    import zipfile

    import h5py

    if zipfile.is_zipfile(path):
        from zoo.safety import check_zip

        with zipfile.ZipFile(path) as archive:
            check_zip(archive, path)
            data = archive.read(KERAS_ARCHIVE_WEIGHTS)
        f = h5py.File(io.BytesIO(data), "r")
        budget = len(data)
    else:
        f = h5py.File(path, "r")
        budget = Path(path).stat().st_size
    try:
        check_h5(f, path, file_size=budget)
    except BaseException:
        f.close()
        raise
    return f


def check_h5(f, origin, *, file_size: int) -> None:
    """Refuse an HDF5 file whose reading could pull in bytes from elsewhere or more memory than it holds.

    As h5py's own guidance for untrusted files: no external links or soft links (they name other
    files or make cycles), no dataset with HDF5 external storage (its bytes come from any local file,
    even a FIFO) and no virtual dataset (mapped from other files). Each dataset's declared size is
    held to the bytes it actually stores (at most MAX_INFLATE times more when compressed), and all
    stored bytes together to the file's size, before a single dataset is read.
    """
    import h5py

    def refuse(name: str, why: str):
        raise WeightsError(f"Refusing {origin}: {name!r} {why}. zoo reads only self-contained weights files; "
                           f"save the weights again with model.save_weights().")

    stored, seen, stack = 0, 0, [f]
    while stack:
        group = stack.pop()
        for key in group:
            seen += 1
            if seen > MAX_OBJECTS:
                refuse(group.name, f"holds more than {MAX_OBJECTS} objects")
            link = group.get(key, getlink=True)
            name = f"{group.name.rstrip('/')}/{key}"
            if isinstance(link, h5py.ExternalLink):
                refuse(name, f"is an external link to {link.filename!r}")
            if isinstance(link, h5py.SoftLink):
                refuse(name, "is a soft link")
            item = group[key]
            if isinstance(item, h5py.Group):
                stack.append(item)
                continue
            if not isinstance(item, h5py.Dataset):
                refuse(name, "is neither a group nor a dataset")
            if item.is_virtual:
                refuse(name, "is a virtual dataset (mapped from other files)")
            if item.id.get_create_plist().get_external_count():
                refuse(name, "uses HDF5 external storage (its bytes live in another file)")
            declared = int(item.size or 0) * int(item.dtype.itemsize)
            size = int(item.id.get_storage_size())
            stored += size
            limit = size if item.chunks is None and item.compression is None else MAX_INFLATE * size + (1 << 20)
            if declared > limit and declared > 1 << 16:
                refuse(name, f"declares {declared} bytes of data ({item.shape}) but stores {size}")
    if stored > file_size:
        refuse("/", f"claims {stored} bytes of data in a file of {file_size} bytes")


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_legacy(path: str | Path, model) -> tuple[dict[str, list[np.ndarray]], list[str]]:
    """Legacy layout (tf.keras `save_weights('x.h5')`, keras.applications files): one group per
    layer name with attribute `weight_names` giving the order of its datasets. Returns the arrays of
    `model`'s layers and the names of the file's other layers (never read).

    Keras 2 named some layers with a slash ("conv1/conv" in DenseNet); Keras 3 and zoo use "_".
    """
    names = {layer.name for layer in model.layers}
    with open_h5(path) as f:
        root = f["model_weights"] if "model_weights" in f else f
        wanted, unused = {}, []
        for layer_name in (_text(n) for n in root.attrs["layer_names"]):
            group = root[layer_name]
            datasets = [group[_text(n)] for n in group.attrs.get("weight_names", [])]
            if not datasets:
                continue
            name = layer_name.replace("/", "_")
            if name in names:
                wanted[name] = datasets
            else:
                unused.append(name)
        return _read_within(wanted, model, path), unused


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


def read_keras3_for(path: str | Path, model) -> tuple[dict[str, list[np.ndarray]], list[str]]:
    """Keras 3 file (`layers/<class key>/vars/<i>`, keys as in `keras3_keys`) -> {layer name: arrays}
    for `model`; also the file keys no layer claims (never read)."""
    keys = keras3_keys(model)
    with open_h5(path) as f:
        if "layers" not in f:
            raise WeightsError(f"{path} has no 'layers' group: it was not written by a Keras 3 functional model.")
        wanted, unused = {}, []
        for key, group in f["layers"].items():
            if "vars" not in group or not len(group["vars"]):
                continue
            layer = keys.get(key)
            if layer is None:
                unused.append(key)
            else:
                wanted[layer.name] = [group["vars"][str(i)] for i in range(len(group["vars"]))]
        return _read_within(wanted, model, path), unused


# The datasets read for a model may declare at most this many values beyond twice the model's own
# parameters: room for a larger classifier head (1000 ImageNet classes into a 10-class model) and a
# 3-channel first conv adapted to gray input, never gigabytes for a model of megabytes.
READ_SLACK = 1 << 24


def _read_within(wanted: dict[str, list], model, origin) -> dict[str, list[np.ndarray]]:
    """Read the datasets of `wanted` ({layer name: h5py datasets}) once their declared sizes, summed,
    fit what `model` can take (check_h5 has already held each to the bytes it stores)."""
    declared = sum(int(d.size or 0) for datasets in wanted.values() for d in datasets)
    params = sum(int(np.prod(w.shape)) for layer in model.layers if layer.name in wanted for w in layer.weights)
    if declared > 2 * params + READ_SLACK:
        raise WeightsError(f"Refusing {origin}: its tensors for {model.name!r} declare {declared:,} values where the "
                           f"model's layers hold {params:,}; these are not weights for this model. Pick weights "
                           f"made for it.")
    return {name: [np.asarray(d) for d in datasets] for name, datasets in wanted.items()}
