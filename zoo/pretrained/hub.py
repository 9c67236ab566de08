"""TF2 SavedModels and TF-Hub modules as Keras 3 layers (frozen or trainable feature extractors).

`hub.KerasLayer` needs Keras 2 (tf_keras) and fails inside Keras 3 models (tensorflow#65419,
keras#20648); `keras.layers.TFSMLayer` works in Keras 3 but trains copies of the variables that
the SavedModel's functions never read (keras#20955), so fine-tuning silently does nothing.
`HubFeatureExtractor` loads the SavedModel with `tf.saved_model.load` and hands Keras the
SavedModel's own variables, so `fit` updates exactly what the functions compute with.

What works (tests/test_hub.py):
- SavedModels written by `model.export()` / `zoo export --format savedmodel` (endpoint "serve"),
  generic TF2 SavedModels with a "serving_default" signature, and TF2 TF-Hub modules (callable
  object, `hub.load` style), from a local folder or a handle tensorflow_hub resolves into its
  cache (TFHUB_CACHE_DIR);
- frozen (`trainable=False`: every variable is non-trainable) and trainable extractors inside
  functional models, `fit`, and dict outputs (pick one with `output_key`).
What does not: TF1 Hub modules (hub.Module format), training-mode batch norm inside the module
(the exported function runs in inference mode, which is what a fine-tune with frozen BN wants),
other Keras backends (SavedModels are TensorFlow graphs), and loading a .keras file that
contains this layer in safe mode: a SavedModel is graph code, so it loads only inside
`with trusted_savedmodels(path): ...` (or with safe_mode=False), like Keras's TFSMLayer.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
from pathlib import Path
from typing import Any

import keras

from zoo.errors import UsageError, WeightsError

_TRUSTED: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("zoo_trusted_savedmodels", default=frozenset())


@contextlib.contextmanager
def trusted_savedmodels(*paths: str | os.PathLike):
    """Allow `HubFeatureExtractor` layers reading these SavedModel folders to deserialize in safe mode."""
    names = set()
    for p in paths:  # the handle as given, its absolute path and its real path: any of them matches later
        names |= {os.fspath(p), os.path.abspath(os.path.expanduser(os.fspath(p))), str(Path(p).expanduser().resolve())}
    token = _TRUSTED.set(_TRUSTED.get() | names)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def _hub_cache_dir(handle: str) -> Path:
    base = os.environ.get("TFHUB_CACHE_DIR") or os.path.join(os.environ.get("TMPDIR", "/tmp"), "tfhub_modules")
    return Path(base) / hashlib.sha1(handle.encode("utf-8")).hexdigest()  # tensorflow_hub's cache layout


def resolve_handle(handle: str | os.PathLike) -> Path:
    """A local SavedModel folder for a path or a TF-Hub handle (never touches the network offline)."""
    text = os.fspath(handle)
    local = Path(text).expanduser()
    if local.is_file() and local.name.endswith((".tar.gz", ".tgz", ".tar")):
        # a module archive as TF-Hub / Kaggle serve them: unpacked with zoo.safety (no `..`, no links)
        from zoo.pretrained.fetch import zoo_home
        from zoo.safety import extract_cached

        local = extract_cached(local, zoo_home() / "hub")
    if local.exists():
        if not (local / "saved_model.pb").is_file():
            if (local / "tfhub_module.pb").is_file():
                raise UsageError(f"{local} is a TF1 Hub module (hub.Module format), which needs TF1 graphs. "
                                 f"Use the TF2 SavedModel version of the module.")
            raise UsageError(f"{local} is not a SavedModel folder (no saved_model.pb). Give the folder that "
                             f"model.export() or `zoo export --format savedmodel` wrote.")
        return local
    if not text.startswith(("https://", "http://")):
        raise UsageError(f"SavedModel folder {text} does not exist. Give a folder with saved_model.pb or a "
                         f"TF-Hub handle (https://...).")
    from zoo.pretrained.fetch import check_url, offline

    cached = _hub_cache_dir(text)
    if (cached / "saved_model.pb").is_file():
        return cached
    if offline():
        raise WeightsError(f"ZOO_OFFLINE=1 and TF-Hub module {text} is not in the TF-Hub cache. Download its "
                           f"TF2 SavedModel archive by hand, extract it into {cached} (or any folder) and pass "
                           f"that folder instead of the handle.")
    check_url(text)  # https only, except loopback or ZOO_ALLOW_HTTP=1
    try:
        import tensorflow_hub as hub

        return Path(hub.resolve(text))
    except Exception as exc:  # tensorflow_hub raises many types (HTTP, gated models, bad archives)
        raise WeightsError(f"Could not resolve TF-Hub handle {text} ({type(exc).__name__}: {exc}). Download the "
                           f"module by hand and pass its extracted folder; TF-Hub's cache is {cached.parent} "
                           f"(TFHUB_CACHE_DIR).") from None


def signature_input_shape(handle: str | os.PathLike) -> tuple[int, int, int] | None:
    """(H, W, C) of a local SavedModel's single image input, read from its signatures in saved_model.pb
    (nothing is loaded or run); None when the folder has no such fixed-size signature."""
    pb = Path(os.fspath(handle)).expanduser() / "saved_model.pb"
    if not pb.is_file():
        return None
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(pb.read_bytes())
    except Exception:  # protobuf's DecodeError: resolve_handle reports a damaged folder in its words
        return None
    for graph in proto.meta_graphs:
        keys = [k for k in ("serving_default", "serve") if k in graph.signature_def] + sorted(graph.signature_def)
        for key in keys:
            inputs = graph.signature_def[key].inputs
            if len(inputs) != 1:
                continue
            dims = [d.size for d in next(iter(inputs.values())).tensor_shape.dim]
            if len(dims) == 4 and all(d > 0 for d in dims[1:]):
                return int(dims[1]), int(dims[2]), int(dims[3])
    return None


def _pb_sha256(folder: Path) -> str:
    return hashlib.sha256((folder / "saved_model.pb").read_bytes()).hexdigest()


@keras.saving.register_keras_serializable(package="zoo")
class HubFeatureExtractor(keras.layers.Layer):
    """A TF2 SavedModel / TF-Hub module as a Keras 3 layer whose variables Keras trains in place."""

    def __init__(self, handle: str, *, output_key: str | None = None, endpoint: str | None = None, **kwargs):
        super().__init__(**kwargs)
        import tensorflow as tf
        from keras.src.export.saved_model import _list_variables_used_by_fns

        if keras.backend.backend() != "tensorflow":
            raise UsageError(f"A SavedModel layer needs the TensorFlow backend of Keras. "
                             f"Received: KERAS_BACKEND={keras.backend.backend()!r}.")
        self.handle = os.fspath(handle)
        self.output_key = output_key
        self.saved_model_path = resolve_handle(self.handle)
        self._obj = tf.saved_model.load(str(self.saved_model_path))
        self.endpoint, self._fn = self._pick_endpoint(endpoint)
        trainable, frozen = _list_variables_used_by_fns([self._fn])
        for variable in list(trainable) + list(frozen):
            self._adopt(variable, trainable=variable.trainable and self.trainable)
        self._build_at_init()

    def _pick_endpoint(self, endpoint: str | None):
        obj = self._obj
        signatures = dict(getattr(obj, "signatures", {}) or {})
        if endpoint:
            fn = getattr(obj, endpoint, None) or signatures.get(endpoint)
        elif getattr(obj, "serve", None) is not None:  # model.export() / zoo export
            endpoint, fn = "serve", obj.serve
        elif callable(obj):  # TF2 Hub modules: hub.load(handle)(images)
            endpoint, fn = "__call__", obj.__call__
        else:
            endpoint, fn = "serving_default", signatures.get("serving_default")
        if fn is None:
            available = sorted(set(signatures) | ({"__call__"} if callable(obj) else set()))
            raise UsageError(f"SavedModel {self.saved_model_path} has no endpoint {endpoint!r}. Available: "
                             f"{', '.join(available) or 'none'}. Pass endpoint=NAME.")
        return endpoint, fn

    def _adopt(self, variable, *, trainable: bool) -> None:
        # A Keras variable whose storage IS the SavedModel's tf.Variable: the optimizer's updates
        # land where the restored functions read (TFSMLayer trains detached copies instead).
        import numpy as np

        kv = keras.Variable(initializer=np.zeros(variable.shape, variable.dtype.as_numpy_dtype), trainable=trainable,
                            dtype=variable.dtype.name, name=variable.name.split(":")[0].replace("/", "_"))
        kv._value = variable
        self._track_variable(kv)

    def call(self, inputs):
        out = self._fn(inputs)
        if isinstance(out, dict):
            if self.output_key is not None:
                if self.output_key not in out:
                    raise UsageError(f"`output_key` {self.output_key!r} is not an output of {self.handle}. "
                                     f"Outputs: {', '.join(sorted(out))}.")
                return out[self.output_key]
            if len(out) == 1:
                return next(iter(out.values()))
        return out

    def compute_output_spec(self, inputs):
        import tensorflow as tf

        spec = tf.TensorSpec(inputs.shape, inputs.dtype)
        out = self.call(tf.zeros([1 if d is None else d for d in spec.shape], spec.dtype))
        shape = (inputs.shape[0], *out.shape[1:])
        return keras.KerasTensor(shape, dtype=out.dtype.name)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "handle": self.handle, "output_key": self.output_key,
                "endpoint": self.endpoint, "saved_model_sha256": _pb_sha256(self.saved_model_path)}

    @classmethod
    def from_config(cls, config):
        from keras.src.saving import serialization_lib

        config = dict(config)
        pinned = config.pop("saved_model_sha256", None)
        handle = os.fspath(config["handle"])
        # Decided from the handle's text alone: an untrusted handle is refused before it is resolved,
        # so a hostile file never makes zoo open a URL or unpack an archive.
        trusted = {handle, os.path.abspath(os.path.expanduser(handle))} & _TRUSTED.get()
        if serialization_lib.in_safe_mode() is not False and not trusted:
            raise UsageError(f"This model contains SavedModel {handle[:200]!r} (graph code from outside the .keras "
                             f"file), which safe mode does not load. If you trust it: "
                             f"`with zoo.pretrained.hub.trusted_savedmodels({handle[:200]!r}): zoo.load_model(...)`.")
        path = resolve_handle(handle)
        if pinned and _pb_sha256(path) != pinned:
            raise WeightsError(f"SavedModel {path} changed since this model was saved (saved_model.pb sha256 "
                               f"differs). Restore the original SavedModel or rebuild the model.")
        return cls(**config)


CUSTOM_OBJECTS = {"zoo>HubFeatureExtractor": HubFeatureExtractor}


def hub_feature_extractor(path_or_handle: str | os.PathLike, *, trainable: bool = False,
                          output_key: str | None = None, endpoint: str | None = None,
                          name: str | None = None) -> keras.layers.Layer:
    """A SavedModel folder or TF-Hub handle as a Keras 3 layer.

    Args:
        path_or_handle: folder with saved_model.pb, or a TF-Hub handle (resolved into TFHUB_CACHE_DIR).
        trainable: False freezes every variable (a feature extractor); True fine-tunes them in place.
        output_key: which output to return when the SavedModel returns a dict.
        endpoint: function to call ("serve", "__call__", a signature); found automatically by default.
        name: layer name.
    Returns:
        keras.layers.Layer usable in functional models and `fit`.
    """
    return HubFeatureExtractor(os.fspath(path_or_handle), output_key=output_key, endpoint=endpoint,
                               trainable=trainable, name=name)
