"""zoo.export: SavedModel, TFLite (float32 / float16 / int8) and ONNX, each checked against Keras.

    zoo.export("runs/flowers", format="tflite", out="flowers.tflite", quantize="float16")

After writing, the artefact is run by its own runtime (TensorFlow for SavedModel, the TFLite
interpreter, onnxruntime) on sample inputs, and the largest absolute difference from the Keras
model's outputs is reported; above the tolerance the export fails and nothing is left at `out`.
The artefact is written into a scratch folder beside `out` and moved into place (zoo.files.publish)
only once it has passed, so `out` is never half-written.

Sample inputs: images of `calibration` (decoded and resized exactly as `zoo predict` does) when
given, else random pixels in [0, 255] (the input of models with preprocessing inside).
Tolerance: max |exported - keras| <= tol * max(1, max |keras|), tol = 1e-4 (float32), 1e-2
(float16), 0.1 (int8: a quantised model is an approximation; the top-1 agreement is reported too).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import UsageError, ZooError
from zoo.files import publish, write_bytes, write_text
from zoo.ownership import mark_owned, require_owned

FORMATS = ("savedmodel", "tflite", "onnx")
INPUT_DTYPES = ("float32", "uint8")
# Stable names of an export's input and (single) output, whatever the Keras graph called them.
INPUT_NAME, OUTPUT_NAME = "image", "predictions"
QUANTIZATIONS = ("float16", "int8")
TOLERANCE = {"float32": 1e-4, "float16": 1e-2, "int8": 0.1}
CALIBRATION_IMAGES = 100  # representative images for int8 (TFLite suggests ~100)


# Packages a format needs beyond TensorFlow, and the pyproject extra that installs them.
FORMAT_PACKAGES = {"onnx": (("tf2onnx", "onnx", "onnxruntime"), "export")}


def require_format_packages(fmt: str) -> None:
    """Raise MissingDependency, naming the pip extra, when `fmt`'s optional packages are missing."""
    import importlib

    from zoo.errors import MissingDependency

    modules, extra = FORMAT_PACKAGES.get(fmt, ((), ""))
    missing = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise MissingDependency(f"The {fmt} format needs the package(s) {', '.join(missing)}, which are not installed. "
                                f"Install them with: pip install 'zoo[{extra}]'")


class ParityError(ZooError):
    """The exported artefact's outputs differ from the Keras model's beyond the tolerance."""


def export(
    model: Any,
    *,
    format: str,
    out: str | os.PathLike,
    weights: str | None = None,
    quantize: str | None = None,
    calibration: str | os.PathLike | None = None,
    tolerance: float | None = None,
    input_dtype: str = "float32",
    overwrite: bool = False,
) -> Path:
    """Export `model` (registry name, model directory, .keras file or keras.Model) and check parity.

    Args:
        format: "savedmodel", "tflite" or "onnx".
        out: the artefact path (a folder for savedmodel, a file otherwise).
        weights: with a registry name, as in zoo.predict.
        quantize: TFLite only: "float16", or "int8" (needs `calibration`).
        calibration: a folder of images: int8's representative data, and the parity inputs.
        tolerance: override the maximum allowed difference (see the module docstring).
        input_dtype: "float32" (default) or "uint8": the artefact's pixel input type.
        overwrite: replace an existing `out`: a file, or a folder written by a previous zoo export
            (it carries zoo's ownership mark); anything else at `out` is refused.
    Returns:
        The path written. Raises ParityError when the artefact's outputs differ too much.
    """
    path, _ = export_with_report(model, format=format, out=out, weights=weights, quantize=quantize,
                                 calibration=calibration, tolerance=tolerance, input_dtype=input_dtype,
                                 overwrite=overwrite)
    return path


def export_with_report(model, *, format, out, weights=None, quantize=None, calibration=None,
                       tolerance=None, input_dtype="float32", overwrite=False) -> tuple[Path, dict]:
    """zoo.export, also returning {"format", "quantize", "max_abs_diff", "tolerance", "samples", ...}."""
    fmt = str(format).lower().replace("saved_model", "savedmodel")
    if fmt not in FORMATS:
        raise UsageError(f"`format` must be one of {', '.join(FORMATS)}. Received: format={format!r}.")
    require_format_packages(fmt)
    if input_dtype not in INPUT_DTYPES:
        raise UsageError(f"`input_dtype` must be one of {', '.join(INPUT_DTYPES)}. Received: input_dtype={input_dtype!r}.")
    if quantize is not None and str(quantize).lower() == "none":
        quantize = None
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise UsageError(f"`quantize` must be one of {', '.join(QUANTIZATIONS)} or None. Received: quantize={quantize!r}.")
    if quantize is not None and fmt != "tflite":
        raise UsageError(f"Quantisation is for TFLite exports. Received: format={fmt!r}, quantize={quantize!r}. "
                         f"Use --format tflite, or drop --quantize.")
    if quantize == "int8" and calibration is None:
        raise UsageError("int8 quantisation needs representative images: pass --calibration DIR "
                         "(a folder of ~100 typical inputs).")
    # abspath: "." and ".." become real names, so the artefact never lands in the scratch folder itself.
    out = Path(os.path.abspath(Path(out).expanduser()))
    if not out.name:
        raise UsageError(f"--out must name a file or folder to create. Received: {str(out)!r}.")
    if not out.parent.exists():
        raise UsageError(f"The folder of --out does not exist: {out.parent}. Create it first.")
    _check_out(out, fmt, overwrite)

    from zoo.inference import input_size
    from zoo.modeldir import resolve_model

    keras_model, meta = resolve_model(model, weights=weights)
    if meta.get("task") == "captioning":
        return _captioner(keras_model, meta, fmt=fmt, out=out, tolerance=tolerance)
    if len(keras_model.inputs) != 1:
        raise UsageError(f"Export supports single-input models; this one has {len(keras_model.inputs)} inputs.")
    height, width, channels = input_size(keras_model, meta)
    meta = {**meta, "input_shape": [height, width, channels]}
    samples = sample_inputs(keras_model, meta, calibration=calibration)
    if input_dtype == "uint8":  # whole pixel values, the same for the Keras model and the artefact
        samples = np.clip(np.round(samples), 0, 255).astype(np.uint8)
    from zoo.inference import external_normalisation

    # Whether the artefact takes pixels (preprocessing inside) or normalised input, for predict.
    prep = dict(meta.get("preprocessing") or {})
    prep.setdefault("in_model", external_normalisation(keras_model, meta) is None)
    meta = {**meta, "preprocessing": prep, "input_dtype": input_dtype}
    reference = [np.asarray(o, np.float64)
                 for o in _flatten(keras_model(samples.astype(np.float32), training=False))]
    # Export the inference copy (batch norm folded, dropout gone); the parity check below compares
    # the artefact with the original model, so it covers the folding too.
    keras_model = _inference_copy(keras_model, samples.astype(np.float32))

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        artefact = tmp / out.name
        if fmt == "savedmodel":
            _savedmodel(keras_model, artefact, meta, input_dtype=input_dtype)
            outputs = _run_savedmodel(artefact, samples)
        elif fmt == "tflite":
            _tflite(keras_model, artefact, tmp, meta, quantize=quantize, input_dtype=input_dtype,
                    calibration=samples if quantize == "int8" else None)
            outputs = _run_tflite(artefact, samples)
        else:
            _onnx(keras_model, artefact, meta, input_dtype=input_dtype)
            outputs = _run_onnx(artefact, samples)
        report = compare(reference, outputs, precision=quantize or "float32", tolerance=tolerance)
        report.update(format=fmt, quantize=quantize, samples=int(samples.shape[0]), out=str(out),
                      size_bytes=_size(artefact))
        if not report["passed"]:
            raise ParityError(f"The exported {fmt} model differs from the Keras model by {report['max_abs_diff']:.3g} "
                              f"(allowed {report['allowed']:.3g}); nothing was written to {out}. "
                              f"Pass a larger tolerance if this is expected.")
        _check_out(out, fmt, overwrite)  # again: the folder may have changed during the export
        if artefact.is_dir():
            mark_owned(artefact, "export")
        publish(artefact, out)
        if fmt == "tflite":  # a .tflite has no room for zoo's metadata: it travels beside the file
            from zoo.artefacts import side_meta_path

            write_text(side_meta_path(out), json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out, report


def _captioner(model, meta: dict, *, fmt: str, out: Path, tolerance: float | None) -> tuple[Path, dict]:
    """A captioner's inference is a search loop, not one call: it exports as a SavedModel holding the
    loop (zoo.tasks.captioning.export), checked caption for caption against zoo's own decoding."""
    if fmt != "savedmodel":
        raise UsageError(f"Captioning models export as --format savedmodel (the greedy and beam-search loops run "
                         f"in TensorFlow). Received: format={fmt!r}.")
    from zoo.inference import input_size
    from zoo.tasks.captioning.export import check_parity, write_savedmodel

    meta = {**meta, "input_shape": list(input_size(model, meta))}
    samples = sample_inputs(model, meta)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        artefact = write_savedmodel(model, meta, tmp / out.name)
        report = check_parity(model, meta, artefact, samples, tolerance=tolerance)
        report.update(format=fmt, quantize=None, samples=int(samples.shape[0]), out=str(out), size_bytes=_size(artefact))
        if not report["passed"]:
            raise ParityError(f"The exported captioner's captions differ from zoo's (agreement "
                              f"{report['caption_agreement']:.0%}, log-prob difference {report['max_abs_diff']:.3g}); "
                              f"nothing was written to {out}.")
        publish(artefact, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out, report


def _check_out(out: Path, fmt: str, overwrite: bool) -> None:
    """Refuse an `out` the export may not replace: zoo never deletes what it did not write."""
    if not os.path.lexists(out):
        return
    if out.is_symlink():
        raise UsageError(f"--out {out} is a symbolic link; zoo never replaces files through links. Choose another path.")
    if out.is_dir() != (fmt == "savedmodel"):
        kind = "folder" if out.is_dir() else "file"
        raise UsageError(f"--out {out} is an existing {kind}; remove it or choose another path.")
    if out.is_dir():
        require_owned(out, "export", action=f"Exporting into the existing folder {out}")
    if not overwrite:
        raise UsageError(f"--out {out} already exists. Pass --overwrite to replace it, or choose another path.")


def _inference_copy(model, samples):
    from zoo.optimize import inference_model

    try:
        copy = inference_model(model)
        copy(samples[:1], training=False)  # keras's ONNX exporter wants a model that has been called
        return copy
    except Exception as exc:  # an optimisation must never stop an export: export the model as is
        warnings.warn(f"zoo.optimize.inference_model failed ({exc}); exporting the model as it is.", stacklevel=3)
        return model


def compare(reference: list[np.ndarray], outputs: list[np.ndarray], *, precision: str = "float32",
            tolerance: float | None = None) -> dict[str, Any]:
    """Max |outputs - reference| against tol * max(1, max |reference|), and top-1 agreement."""
    if len(reference) != len(outputs):
        raise ParityError(f"The exported model has {len(outputs)} outputs; the Keras model has {len(reference)}.")
    diff, peak, agree, total = 0.0, 1.0, 0, 0
    for ref, got in zip(reference, outputs):
        got = np.asarray(got, np.float64).reshape(ref.shape)
        diff = max(diff, float(np.max(np.abs(got - ref))) if ref.size else 0.0)
        peak = max(peak, float(np.max(np.abs(ref))) if ref.size else 0.0)
        if ref.ndim == 2:  # class scores: does the export pick the same class?
            agree += int(np.sum(ref.argmax(-1) == got.argmax(-1)))
            total += ref.shape[0]
    tol = TOLERANCE[precision] if tolerance is None else float(tolerance)
    allowed = tol * peak
    report = {"max_abs_diff": diff, "tolerance": tol, "allowed": allowed, "passed": diff <= allowed}
    if total:
        report["top1_agreement"] = agree / total
    return report


def sample_inputs(model, meta: dict, *, calibration=None, count: int = 4, seed: int = 0) -> np.ndarray:
    """float32 (N, H, W, C) model inputs: calibration images prepared as predict does, else random pixels."""
    height, width, channels = meta["input_shape"]
    if calibration is None:
        rng = np.random.default_rng(seed)
        return rng.uniform(0, 255, (count, height, width, channels)).astype(np.float32)
    from zoo.data.images import decode_image, list_images
    from zoo.errors import ImageError
    from zoo.inference import external_normalisation
    from zoo.training.task import get_task

    folder = Path(calibration)
    if not folder.is_dir():
        raise UsageError(f"--calibration must be a folder of images. Received: {calibration}.")
    task = get_task(meta.get("task") or "classification")
    arrays = []
    for path in list_images(folder, recursive=True)[:CALIBRATION_IMAGES]:
        try:
            array, _ = task.prepare(decode_image(path, channels=channels), meta)
        except ImageError:
            continue
        arrays.append(np.asarray(array, np.float32))
    if not arrays:
        raise UsageError(f"--calibration {folder} holds no readable image. Give a folder of typical inputs.")
    batch = np.stack(arrays)
    norm = external_normalisation(model, meta)
    if norm is not None:  # models without preprocessing inside take normalised input
        from zoo.preprocessing import normalise

        batch = normalise(batch, norm)
    return batch.astype(np.float32)


# --- writers ---


def _archive(model, meta: dict, *, input_dtype: str, serving_extras: bool):
    """A keras.export.ExportArchive of `model` with stable names: input "image" (N, H, W, C) of
    `input_dtype`, output "predictions" (or output_0.. for several outputs). With
    `serving_extras`, also `__call__` (so hub.load(dir)(x) and hub.KerasLayer(dir) work without
    arguments) and the signature "serving_bytes", whose input "image_bytes" is a batch of encoded
    images (TF Serving's REST API base64-decodes {"b64": ...} for inputs named *_bytes), decoded and
    resized (bilinear, to H x W) inside the graph."""
    import keras
    import tensorflow as tf

    height, width, channels = (int(d) for d in meta["input_shape"])
    archive = keras.export.ExportArchive()
    archive.track(model)

    def forward(image):
        return model(tf.cast(image, model.inputs[0].dtype or tf.float32), training=False)

    def named(outputs):
        flat = tf.nest.flatten(outputs)
        return {OUTPUT_NAME: flat[0]} if len(flat) == 1 else {f"output_{i}": o for i, o in enumerate(flat)}

    spec = tf.TensorSpec((None, height, width, channels), tf.as_dtype(input_dtype), name=INPUT_NAME)
    # serving_default (named outputs) first; `serve` returns what the Keras model returns, as
    # Keras's own export does.
    archive.add_endpoint("serving_default", lambda image: named(forward(image)), input_signature=[spec])
    archive.add_endpoint("serve", forward, input_signature=[spec])
    if serving_extras:
        def from_bytes(image_bytes):
            def one(data):
                image = tf.io.decode_image(data, channels=channels, expand_animations=False)
                return tf.image.resize(tf.cast(image, tf.float32), (height, width))

            pixels = tf.map_fn(one, image_bytes, fn_output_signature=tf.TensorSpec((height, width, channels),
                                                                                   tf.float32))
            return named(forward(pixels))

        archive.add_endpoint("serving_bytes", from_bytes,
                             input_signature=[tf.TensorSpec((None,), tf.string, name="image_bytes")])
        archive.add_endpoint("__call__", forward, input_signature=[spec])
    return archive


def _savedmodel(model, path: Path, meta: dict, *, input_dtype: str = "float32") -> None:
    _archive(model, meta, input_dtype=input_dtype, serving_extras=True).write_out(str(path), verbose=False)
    write_text(path / "metadata.json", json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")


def _tflite(model, path: Path, workdir: Path, meta: dict, *, quantize: str | None, input_dtype: str = "float32",
            calibration: np.ndarray | None) -> None:
    import tensorflow as tf

    saved = workdir / "savedmodel"
    _archive(model, meta, input_dtype=input_dtype, serving_extras=False).write_out(str(saved), verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=["serving_default"])
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]

        def representative():
            for sample in calibration:
                yield [sample[None]]

        converter.representative_dataset = representative
    write_bytes(path, converter.convert())


def _onnx(model, path: Path, meta: dict, *, input_dtype: str = "float32") -> None:
    import tensorflow as tf

    height, width, channels = (int(d) for d in meta["input_shape"])
    spec = tf.TensorSpec((None, height, width, channels), tf.as_dtype(input_dtype), name=INPUT_NAME)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model.export(str(path), format="onnx", verbose=False, input_signature=[spec])
    try:
        import onnx
    except ImportError:  # metadata is a convenience; the graph is already written
        return
    proto = onnx.load(str(path))
    for key in ("arch", "task", "labels", "input_shape", "preprocessing"):
        if key in meta:
            entry = proto.metadata_props.add()
            entry.key, entry.value = f"zoo.{key}", json.dumps(meta[key], default=str)
    onnx.save(proto, str(path))


# --- runners: the artefact in its own runtime ---


def _run_savedmodel(path: Path, samples: np.ndarray) -> list[np.ndarray]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    return [np.asarray(o) for o in _flatten(loaded.serve(tf.constant(samples)))]


def _interpreter(path: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        return Interpreter(model_path=str(path))


def _run_tflite(path: Path, samples: np.ndarray) -> list[np.ndarray]:
    interpreter = _interpreter(path)
    runner = interpreter.get_signature_runner()
    (input_name,) = runner.get_input_details()
    per_output: dict[str, list[np.ndarray]] = {}
    for sample in samples:  # batch 1: what TFLite models run with on devices
        result = runner(**{input_name: sample[None]})
        for name, value in result.items():
            per_output.setdefault(name, []).append(np.asarray(value))
    names = sorted(per_output, key=_output_order)
    return [np.concatenate(per_output[name]) for name in names]


def _output_order(name: str):
    tail = name.rsplit("_", 1)[-1]
    return (0, int(tail), name) if tail.isdigit() else (1, 0, name)


def _run_onnx(path: Path, samples: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return [np.asarray(o) for o in session.run(None, {name: samples})]


# --- helpers ---


def _flatten(outputs) -> list:
    import tensorflow as tf

    return tf.nest.flatten(outputs)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
