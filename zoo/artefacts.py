"""Artefacts of `zoo export` as models: a SavedModel folder, a .tflite or an .onnx file, run by its
own runtime, with the labels, preprocessing and task the export stored with it (SavedModel:
metadata.json inside the folder; ONNX: `zoo.*` metadata properties; TFLite: FILE.metadata.json
beside the file). zoo.modeldir.resolve_model hands an ExportedModel to predict and evaluate,
which call it like a Keras model on a batch of pixels.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import UsageError

SIDE_META = ".metadata.json"  # FILE.tflite -> FILE.tflite.metadata.json


def artefact_format(path: str | os.PathLike) -> str | None:
    """"savedmodel", "tflite", "onnx" for an export artefact at `path`, else None."""
    path = Path(path)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return "savedmodel"
    if path.is_file() and path.suffix.lower() in (".tflite", ".onnx"):
        return path.suffix.lower()[1:]
    return None


def side_meta_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + SIDE_META)


class _Input:
    """What zoo's inference reads of a Keras model input: its shape and dtype."""

    def __init__(self, shape: tuple, dtype: str):
        self.shape, self.dtype = shape, dtype


class ExportedModel:
    """A zoo export artefact, callable like a Keras model: model(x) -> class scores (or the task's
    outputs) for a float32 batch of pixels (N, H, W, C)."""

    is_exported_artefact = True  # zoo.inference runs it as it is (no Keras inference copy)
    layers: list = []

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.format = artefact_format(self.path)
        if self.format is None:
            raise UsageError(f"{self.path} is not an artefact of `zoo export` (a SavedModel folder, .tflite or .onnx).")
        self.name = self.path.name
        self._run = getattr(self, f"_open_{self.format}")()
        meta = self.meta
        shape = meta.get("input_shape") or [None, None, None]
        self.inputs = [_Input((None, *shape), "float32")]
        self.input_shape = (None, *shape)
        self.output_shape = (None, len(meta.get("labels") or []) or None)
        object.__setattr__(self, "_zoo_meta", dict(meta))

    # --- runtimes ---

    def _open_savedmodel(self):
        import tensorflow as tf

        from zoo.modeldir import read_meta

        self.meta = read_meta(self.path)
        loaded = tf.saved_model.load(str(self.path))
        self._loaded = loaded  # keep the trackable alive
        dtype = tf.as_dtype(self.meta.get("input_dtype") or "float32")

        def run(x):
            flat = tf.nest.flatten(loaded.serve(tf.cast(x, dtype)))
            return flat[0] if len(flat) == 1 else flat

        return run

    def _open_tflite(self):
        from zoo.exporting import _interpreter

        self.meta = _read_side_meta(self.path)
        runner = _interpreter(self.path).get_signature_runner()
        (name,) = runner.get_input_details()

        def run(x: np.ndarray):
            outs = [runner(**{name: sample[None]}) for sample in self._pixels(x)]
            keys = sorted(outs[0]) if outs else []
            return np.concatenate([o[keys[0]] for o in outs]) if outs else np.zeros((0, 0), np.float32)

        return self._numpy_call(run)

    def _open_onnx(self):
        from zoo.exporting import require_format_packages

        require_format_packages("onnx")
        import onnxruntime as ort

        session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        props = session.get_modelmeta().custom_metadata_map
        self.meta = {}
        for key, value in props.items():
            if key.startswith("zoo."):
                try:
                    self.meta[key[4:]] = json.loads(value)
                except ValueError:
                    continue
        from zoo.safety import check_meta

        self.meta = check_meta(self.meta, self.path)
        name = session.get_inputs()[0].name
        return self._numpy_call(lambda x: session.run(None, {name: self._pixels(x)})[0])

    def _pixels(self, x) -> np.ndarray:
        """x as the artefact's input type (float32, or uint8 for --input-dtype uint8)."""
        dtype = self.meta.get("input_dtype") or "float32"
        x = np.asarray(x, np.float32)
        return np.clip(np.round(x), 0, 255).astype(np.uint8) if dtype == "uint8" else x

    @staticmethod
    def _numpy_call(run):
        """A runtime that takes numpy, callable on tensors too (inside tf.function as well)."""

        def call(x):
            import tensorflow as tf

            if isinstance(x, np.ndarray):
                return run(x)
            out = tf.numpy_function(lambda a: np.asarray(run(a), np.float32), [tf.cast(x, tf.float32)], tf.float32)
            return out

        return call

    def __call__(self, x, training: bool = False):
        return self._run(x)

    def predict(self, x, verbose: int = 0, batch_size: int = 32):
        return np.concatenate([np.asarray(self(np.asarray(x[i:i + batch_size], np.float32)))
                               for i in range(0, len(x), batch_size)])


def _read_side_meta(path: Path) -> dict[str, Any]:
    side = side_meta_path(path)
    if not side.is_file():
        raise UsageError(f"{path} has no {side.name} beside it: zoo export writes one with the labels and "
                         f"preprocessing. Export again, or copy it along with the model.")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise UsageError(f"{side} is not valid JSON ({' '.join(str(exc).split())[:200]}). Export the model again.") from None
    if not isinstance(meta, dict):
        raise UsageError(f"{side} must hold a JSON object. Export the model again.")
    from zoo.safety import check_meta

    return check_meta(meta, side)
