"""zoo.predict: batched, streaming inference on image files for every task.

    records = zoo.predict(["photos/", "a.jpg"], model="resnet50", weights="imagenet", top_k=5)

Pipeline (one pass, bounded memory): sources are expanded lazily (zoo.data.sources); a bounded
thread pool decodes (zoo.data.images.decode_image) and prepares (task.prepare: resize policy from
the metadata) images a few batches ahead, in order, while the main thread runs the model's
compiled forward function on the previous batch; the task's postprocess turns outputs into
record fields. Records come out in input order; a bad input gives an error record and the rest go on.

Tasks plug in through zoo.training.task.get_task(meta["task"]) with prepare / postprocess / save, and
optionally `forward(model, batch, meta, options) -> outputs` for models that need more than one
call (e.g. a captioner's beam search).
"""

from __future__ import annotations

import json
import os
import warnings
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ImageError, UsageError


def predict(
    sources: Any,
    *,
    model: Any,
    weights: str | None = None,
    top_k: int = 5,
    batch_size: int = 32,
    **options: Any,
) -> list[dict]:
    """Predictions for image files, folders, globs and .txt lists, one record per input, in order.

    Args:
        sources: a path / glob / folder / .txt list, or a list of them (also bytes or HxWxC arrays).
        model: a registry name, a model directory, a .keras file, or a keras.Model from zoo.
        weights: with a registry name: a manifest tag, a path, or "none" (random weights). Default:
            the model's pretrained weights ("imagenet" if it has them, else its first tag).
        top_k: how many classes each classification record lists.
        batch_size: images per forward pass.
        **options: recursive, save_dir, workers, max_pixels, and task options (conf, iou, max_det,
            beam_size...).
    Returns:
        The records of `zoo predict --format jsonl`: {"source", "ok", "task", "predictions": [{label,
        index, score}], ...} or {"source", "ok": false, "error"}.
    """
    return list(iter_predict(sources, model=model, weights=weights, top_k=top_k, batch_size=batch_size, **options))


def iter_predict(
    sources: Any,
    *,
    model: Any,
    weights: str | None = None,
    top_k: int = 5,
    batch_size: int = 32,
    recursive: bool = False,
    save_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    max_pixels: Any = None,
    **options: Any,
) -> Iterator[dict]:
    """zoo.predict as a generator: records stream out as batches finish (used by the CLI)."""
    _check_int("top_k", top_k)
    _check_int("batch_size", batch_size)
    if workers is not None:
        _check_int("workers", workers)
    from zoo.data.images import DEFAULT, max_pixels_limit

    max_pixels_limit(DEFAULT if max_pixels is None else max_pixels)  # a bad limit fails before any work
    from zoo.modeldir import resolve_model
    from zoo.training.task import get_task

    keras_model, meta = resolve_model(model, weights=weights, exported=True)
    task = get_task(meta["task"])
    meta = {**meta, "input_shape": list(input_size(keras_model, meta))}
    if save_dir is not None:
        save_dir = Path(save_dir)
        save_dir.mkdir(parents=True, exist_ok=True)
    options = {**options, "top_k": int(top_k), "save_dir": save_dir}
    run = _runner(task, keras_model, meta, options)
    chunks = prepared_chunks(sources, task, meta, batch_size=batch_size, recursive=recursive, workers=workers,
                             max_pixels=max_pixels, keep_image=save_dir is not None)
    reload = original_loader(meta, max_pixels=max_pixels)
    with closing(chunks):  # closing the stream stops the decoding at once
        for chunk in chunks:
            yield from _finish(chunk, run, task, meta, options, reload=reload)


def _runner(task, model, meta: dict, options: dict):
    """batch -> outputs: the task's own forward (e.g. a captioner's beam search) or the compiled model."""
    forward = getattr(task, "forward", None)
    if forward is None:
        return make_forward(model, meta)
    return lambda batch: forward(model, batch, meta, options)


def prepared_chunks(sources: Any, task, meta: dict, *, batch_size: int, recursive: bool = False,
                    workers: int | None = None, max_pixels: Any = None, keep_image: bool = False) -> Iterator[list]:
    """zoo.predict's input pipeline, for every consumer of prepared batches (predict, explain):
    sources expanded lazily, decoded and prepared (`task.prepare(image, meta)`, meta["input_shape"]
    set) by a thread pool ahead of the consumer, in input order. Yields lists of (index, source,
    array, info, image or None, error) holding up to batch_size good inputs."""
    load = _loader(task, meta, max_pixels=max_pixels, keep_image=keep_image)
    n_workers = workers or min(8, max(2, os.cpu_count() or 2))
    # decoded inputs waiting for the model: this bounds memory. With keep_image the full-size
    # originals of URL sources are kept until drawn, so look ahead one batch only.
    ahead = batch_size if keep_image else max(2 * batch_size, 4 * n_workers)
    return _decoded_chunks(_enumerate(sources, recursive=recursive), load, workers=n_workers, ahead=ahead,
                           batch_size=batch_size)


def _loader(task, meta: dict, *, max_pixels, keep_image: bool):
    """(index, source, error) -> (index, source, array, info, image or None, error): decode and prepare
    one input in a worker thread; a bad input becomes its error, never the batch's."""
    from zoo.data.images import DEFAULT

    limit = DEFAULT if max_pixels is None else max_pixels
    channels = meta["input_shape"][2]

    def load(item):
        index, source, error = item
        if error is not None:
            return index, source, None, None, None, error
        try:
            raw = source
            if keep_image and channels != 3 and not isinstance(source, np.ndarray) and not _is_pil(source):
                from zoo.data.sources import is_url, read_url

                raw = read_url(source) if is_url(source) else source  # fetched once, decoded twice
            image = _decode(raw, channels=channels, max_pixels=limit)
            array, info = task.prepare(image, meta)
            if keep_image and channels != 3:  # draw on the user's own colours, not the model's grayscale input
                image = _decode(raw, channels=3, max_pixels=limit)
        except ImageError as exc:
            return index, source, None, None, None, str(exc)
        except Exception as exc:  # one bad input never stops the batch
            return index, source, None, None, None, _one_line(f"{type(exc).__name__}: {exc}")
        # With --save-dir the full-size original is drawn on after the batch runs. Holding a batch
        # of 12 MP originals costs gigabytes, so files and in-memory arrays are decoded again at
        # drawing time, one at a time; only a URL's image (not fetched twice) is kept.
        from zoo.data.sources import is_url

        return index, source, array, info, image if keep_image and is_url(source) else None, None

    return load


def original_loader(meta: dict, *, max_pixels):
    """source -> the full-size original again, for drawing one artefact at a time."""
    from zoo.data.images import DEFAULT

    limit = DEFAULT if max_pixels is None else max_pixels
    return lambda source: _decode(source, channels=3, max_pixels=limit)  # drawn on the user's own colours


def _decoded_chunks(items: Iterator, load, *, workers: int, ahead: int, batch_size: int) -> Iterator[list]:
    """Lists of `load` results in input order, decoded by a thread pool at most `ahead` inputs in
    front of the consumer; a list ends after `batch_size` good inputs (or 4 batches of errors)."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zoo-decode")
    pending: deque = deque()
    try:
        chunk: list[tuple] = []
        n_ok = 0
        exhausted = False
        while True:
            while not exhausted and len(pending) < ahead:
                item = next(items, None)
                if item is None:
                    exhausted = True
                    break
                pending.append(pool.submit(load, item))
            if not pending:
                break
            result = pending.popleft().result()
            chunk.append(result)
            n_ok += result[5] is None
            # flush on a full batch; errors alone are flushed too so they are not held back long
            if n_ok >= batch_size or len(chunk) >= 4 * batch_size:
                yield chunk
                chunk, n_ok = [], 0
        if chunk:
            yield chunk
    finally:
        # stopped early (Ctrl-C, an error, or the caller closed the stream): drop queued decodes
        pool.shutdown(wait=True, cancel_futures=True)


def _finish(chunk, run, task, meta, options, *, reload=None) -> Iterator[dict]:
    good = [r for r in chunk if r[5] is None]
    fields: dict[int, dict] = {}
    if good:
        batch = np.stack([r[2] for r in good])
        outputs = run(batch)
        results = task.postprocess(outputs, [r[3] for r in good], meta, options)
        fields = {r[0]: f for r, f in zip(good, results)}
    for index, source, _, _, image, error in chunk:
        if error is not None:
            yield {"source": source, "ok": False, "error": error}
            continue
        record = {"source": source, "ok": True, "task": task.name, **fields[index]}
        if options.get("save_dir") is not None:
            try:
                task.save(record, image if image is not None else reload(source), meta, options["save_dir"])
            except Exception as exc:  # a failed drawing is this input's failure, not the run's
                record = {**record, "ok": False, "error": _one_line(f"could not save the artefact: {exc}")}
        yield record


def _enumerate(sources, *, recursive: bool) -> Iterator[tuple[int, Any, str | None]]:
    """(index, source, error) for every input; arrays and bytes pass through unexpanded."""
    from zoo.data.sources import iter_sources

    if isinstance(sources, (str, os.PathLike, bytes, np.ndarray)) or _is_pil(sources):
        sources = [sources]
    index = 0
    for source in sources:
        if isinstance(source, (str, os.PathLike)):
            for path, error in iter_sources([source], recursive=recursive):
                yield index, path, error
                index += 1
        else:
            yield index, source, None
            index += 1


def _decode(source, *, channels: int, max_pixels):
    from zoo.data.images import decode_image
    from zoo.data.sources import is_url, read_url

    if isinstance(source, np.ndarray) or _is_pil(source):
        array = np.asarray(source)
        if array.dtype != np.uint8 or array.ndim not in (2, 3):
            raise ImageError(f"an in-memory image must be HxW or HxWxC uint8; got {array.dtype} {array.shape}")
        if array.ndim == 2:
            array = array[:, :, None]
        if array.shape[2] == channels:
            return array
        from PIL import Image

        return decode_image(_png_bytes(Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)),
                            channels=channels, max_pixels=max_pixels)
    if is_url(source):
        source = read_url(source)
    return decode_image(source, channels=channels, max_pixels=max_pixels)


def _png_bytes(image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _is_pil(obj) -> bool:
    return type(obj).__module__.startswith("PIL.")


def _check_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"`{name}` must be a whole number >= 1. Received: {name}={value!r}.")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:500]


# --- the model and its metadata ---


def input_size(model: Any, meta: dict) -> tuple[int, int, int]:
    """(height, width, channels) the images are resized to: metadata first, then the model input."""
    shape = list(meta.get("input_shape") or [])
    model_shape = None
    try:
        model_shape = list(model.inputs[0].shape[1:])
    except (AttributeError, IndexError, TypeError):
        pass
    if len(shape) != 3 or any(d is None for d in shape):
        shape = [s if s is not None else m for s, m in zip(shape, model_shape)] if len(shape) == 3 and model_shape else model_shape
    if not shape or len(shape) != 3 or any(d is None for d in shape):
        raise UsageError(f"Cannot tell the input size of this model (input shape {model_shape}). Save input_shape "
                         f"[H, W, C] in its metadata.json, or build it with a fixed input_shape.")
    h, w, c = (int(d) for d in shape)
    if c not in (1, 3):
        raise UsageError(f"Image models take 1 or 3 channels. Received: input_shape={[h, w, c]}.")
    return h, w, c


def external_normalisation(model: Any, meta: dict) -> dict | None:
    """The preprocessing predict must apply itself: only for models without it inside (built with
    include_preprocessing=False, or metadata saying in_model: false). None when the model has it."""
    prep = dict(meta.get("preprocessing") or {})
    in_model = prep.get("in_model")
    if in_model is None:
        in_model = any(type(layer).__name__ == "Preprocess" or layer.name == "preprocess"
                       for layer in getattr(model, "layers", []))
        if not in_model and not any(k in prep for k in ("mode", "scale", "mean", "std")):
            return None  # a model with no preprocessing at all takes pixels as they are
    if in_model:
        return None
    from zoo.models.common import preprocessing_config

    return preprocessing_config(prep, default="unit")


def make_forward(model: Any, meta: dict):
    """batch (N, H, W, C numpy) -> outputs as numpy (array, or dict / list of arrays).

    A tf.function traced once per input dtype (batch dimension left free), calling the inference
    copy from zoo.optimize when it exists, in inference mode; far cheaper per batch than model.predict.
    Cached on the model object, so repeated zoo.predict calls on one model do not trace again.
    """
    norm = external_normalisation(model, meta)
    key = json.dumps(norm, sort_keys=True, default=str)
    cache = getattr(model, "_zoo_forwards", None)
    if cache is None:
        cache = {}
        try:
            # object.__setattr__: not model state, so Keras must not track it (as attach_meta does)
            object.__setattr__(model, "_zoo_forwards", cache)
        except (AttributeError, TypeError):
            pass
    if key not in cache:
        cache[key] = _compile_forward(model, norm)
    return cache[key]


def normalise(x, config: dict, *, dtype: Any = "float32"):
    """`x` (pixels in [0, 255], channels last; a numpy array or a TensorFlow tensor of `dtype`)
    preprocessed as `config` (from external_normalisation) says, for models that take
    already-preprocessed input. Differentiable, so explanations run through it too."""
    if config.get("channel_order") == "bgr":
        x = x[..., ::-1]
    mean = np.asarray(config.get("mean", [0.0]), dtype)
    std = np.asarray(config.get("std", [1.0]), dtype)
    return (x * float(config.get("scale", 1.0)) - mean) / std


def _compile_forward(model: Any, norm: dict | None):
    import tensorflow as tf

    from zoo.optimize import inference_model
    from zoo.preprocessing import normalise

    try:
        # An export artefact (zoo.artefacts) is already an inference graph in its own runtime.
        infer = model if getattr(model, "is_exported_artefact", False) else inference_model(model)
    except Exception as exc:  # an optimisation must never stop predictions: run the model as is
        warnings.warn(f"zoo.optimize.inference_model failed ({_one_line(exc)}); predicting with the "
                      f"model as it is.", stacklevel=2)
        infer = model
    dtype = tf.as_dtype(getattr(model.inputs[0], "dtype", "float32") or "float32")
    traced: dict = {}

    def body(x):
        x = tf.cast(x, dtype)
        if norm is not None:
            x = normalise(x, norm, dtype=dtype.as_numpy_dtype)
        return infer(x, training=False)

    def run(batch: np.ndarray):
        key = (batch.dtype.str, batch.shape[1:])
        fn = traced.get(key)
        if fn is None:
            spec = tf.TensorSpec((None,) + batch.shape[1:], tf.as_dtype(batch.dtype))
            fn = traced[key] = tf.function(body, input_signature=[spec], reduce_retracing=True)
        out = fn(tf.convert_to_tensor(batch))
        return tf.nest.map_structure(lambda t: t.numpy(), out)

    return run


def count_inputs(sources: Any, *, recursive: bool = False) -> int:
    """How many records `sources` will give (a cheap listing pass, for progress bars)."""
    return sum(1 for _ in _enumerate(sources, recursive=recursive))
