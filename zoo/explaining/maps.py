"""zoo.explain: where the evidence for a prediction is, one record per input image.

    records = zoo.explain(["cat.jpg", "photos/"], model="resnet50", method="gradcam", save_dir="why")

Inputs stream through zoo.predict's pipeline (zoo.inference.prepared_chunks: sources, threaded
decoding, the task's resize policy, batches in input order, a bad input becomes an error record and
the rest go on). Each batch is explained by zoo.explaining.methods.Explainer; the map is taken back
to the original image (zoo.explaining.render), its maximum is the `peak`, and with `save_dir` a PNG
overlay at the original size is written (a raw float32 .npy too with `save_raw`).

Classifiers explain the top class or a chosen label. Detection models explain one predicted box
(`box`: its rank among the detections, best first; with a label `target`, among that label's boxes):
the gradient is of that box's log-score at the anchor that predicted it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import numpy as np

from zoo.errors import UsageError

TASKS = ("classification", "detection")


def explain(
    sources: Any,
    *,
    model: Any,
    method: str = "gradcam",
    target: str | int = "top",
    save_dir: str | os.PathLike | None = None,
    **options: Any,
) -> list[dict]:
    """Explanation records for image files, folders, globs and .txt lists, one per input, in order.

    Args:
        sources: what zoo.predict takes (paths, folders, globs, .txt lists, URLs, arrays, bytes).
        model: a registry name, a model directory, a .keras file, or a keras.Model from zoo
            (a classifier, or a detection model).
        method: "gradcam", "gradcam++", "saliency", "smoothgrad" or "integrated-gradients".
        target: "top" (the predicted class), a label, or a class index.
        save_dir: write a heatmap PNG per input here (the original image with the map over it).
        **options: weights, layer (the feature map for Grad-CAM; default the last convolutional
            one), box (detection: which detection, 0 = best), save_raw (also a float32 .npy of
            the map), sanity (add each map's Spearman correlation with the map of a copy whose top
            layers are re-initialised), return_maps (add the map as an array under "map"),
            batch_size, recursive, workers, max_pixels, samples / noise (smoothgrad), steps
            (integrated gradients), and detection's conf / iou / max_det.
    Returns:
        {"source", "ok", "label", "index", "score", "method", "peak": [x, y], "heatmap": PATH or
        None, ...} per input ("peak" in pixels of the original image; detection adds "box" and
        "box_index"; Grad-CAM "layer"), or {"source", "ok": false, "error"}.
    """
    return list(iter_explain(sources, model=model, method=method, target=target, save_dir=save_dir, **options))


def iter_explain(
    sources: Any,
    *,
    model: Any,
    weights: str | None = None,
    method: str = "gradcam",
    target: str | int = "top",
    layer: Any = None,
    box: int = 0,
    save_dir: str | os.PathLike | None = None,
    save_raw: bool = False,
    sanity: bool = False,
    return_maps: bool = False,
    batch_size: int = 16,
    recursive: bool = False,
    workers: int | None = None,
    max_pixels: Any = None,
    samples: int = 25,
    noise: float = 0.15,
    steps: int = 32,
    **task_options: Any,
) -> Iterator[dict]:
    """zoo.explain as a generator: records stream out as batches finish (used by the CLI)."""
    from pathlib import Path

    from zoo.explaining.methods import MethodOptions, check_method, explainer_for
    from zoo.inference import input_size, prepared_chunks
    from zoo.modeldir import resolve_model
    from zoo.training.task import get_task

    method = check_method(method)
    for name, value, least in (("batch_size", batch_size, 1), ("box", box, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise UsageError(f"`{name}` must be a whole number >= {least}. Received: {name}={value!r}.")
    if save_raw and save_dir is None:
        raise UsageError("`save_raw` writes the raw maps next to the heatmaps: give a save_dir (--save-dir DIR).")
    keras_model, meta = resolve_model(model, weights=weights)
    task = get_task(meta.get("task") or "classification")
    if task.name not in TASKS:
        raise UsageError(f"zoo explain explains classifiers and detection models; this is a {task.name} model. "
                         f"Fine-tune a classifier on it, or use `zoo predict`.")
    height, width, channels = input_size(keras_model, meta)
    meta = {**meta, "input_shape": [height, width, channels]}
    explainer = explainer_for(keras_model, meta, method=method, layer=layer, task=task.name,
                              anchors=_anchor_count(keras_model, meta) if task.name == "detection" else None,
                              options=MethodOptions(samples=samples, noise=noise, steps=steps))
    class_index = _target_index(target, meta)
    if save_dir is not None:
        save_dir = Path(save_dir)
        save_dir.mkdir(parents=True, exist_ok=True)
    forward = None
    if task.name == "detection":
        from zoo.inference import make_forward

        forward = make_forward(keras_model, meta)

    def choose(batch, infos):
        """Per image: the record fields fixed before explaining (or an error), and the targets."""
        if forward is not None:
            return _choose_boxes(forward(batch), infos, meta, task, class_index, box, task_options)
        return [{} for _ in infos], np.full(len(infos), class_index, np.int32)

    context = dict(explainer=explainer, meta=meta, task=task, method=method, save_dir=save_dir, save_raw=save_raw,
                   sanity=sanity, return_maps=return_maps, choose=choose,
                   layer=explainer.layer.name if explainer.layer is not None else None)
    chunks = prepared_chunks(sources, task, meta, batch_size=batch_size, recursive=recursive, workers=workers,
                             max_pixels=max_pixels, keep_image=save_dir is not None)
    with closing(chunks):
        for chunk in chunks:
            yield from _explain_chunk(chunk, **context)


def _target_index(target: Any, meta: dict) -> int:
    """-1 for "top", else the class index of a label (or of an index given as int or digits)."""
    if target is None or (isinstance(target, str) and target.strip().lower() == "top"):
        return -1
    labels = [str(l) for l in meta.get("labels") or []]
    if isinstance(target, str) and target in labels:
        return labels.index(target)
    text = str(target).strip()
    if text.isdigit() and (not labels or int(text) < len(labels)):
        return int(text)
    shown = ", ".join(labels[:8]) + (", ..." if len(labels) > 8 else "")
    raise UsageError(f"`target` must be 'top', one of the model's labels ({shown or 'none stored'}) or a class "
                     f"index. Received: target={target!r}.")


# Detection specifics (the head's anchors, box decoding and NMS) come from the detection task, here only.


def _anchor_count(model, meta: dict) -> int:
    from zoo.tasks.detection.predict import model_anchors

    return len(model_anchors(meta, int(model.outputs[0].shape[-1])))


def _choose_boxes(raw, infos, meta, task, class_index, box, options):
    """Per image: the record fields of the chosen detection (or an error) and its (anchor, class)."""
    from zoo.tasks.detection.predict import model_anchors, thresholds as detection_options
    from zoo.tasks.detection.boxes import decode, detect

    raw = np.asarray(raw[0] if isinstance(raw, (list, tuple)) else raw)
    options = {k: v for k, v in options.items() if v is not None}
    fields = task.postprocess(raw, infos, meta, options)
    # the thresholds postprocess used: the caller's, else those stored with the model
    opts = detection_options({**(meta.get("detection") or {}), **options})
    anchors = model_anchors(meta, raw.shape[-1])
    kept = detect(raw, anchors, **opts)
    all_boxes = decode(raw, anchors)[0]
    chosen, targets = [], np.zeros((len(infos), 2), np.int32)
    for i, (record, (boxes, _, classes)) in enumerate(zip(fields, kept)):
        candidates = [j for j, d in enumerate(record["detections"]) if class_index < 0 or d["index"] == class_index]
        if box >= len(candidates):
            which = "" if class_index < 0 else f" of class {class_index}"
            chosen.append({"error": f"no detection #{box}{which}: the model found {len(candidates)} box(es) at conf "
                                    f"{opts['conf']} (lower --conf, or pick another --box)"})
            continue
        j = candidates[box]
        anchor = int(np.argmin(np.abs(all_boxes[i] - boxes[j]).sum(axis=-1)))
        targets[i] = (anchor, int(classes[j]))
        det = record["detections"][j]
        chosen.append({"label": det["label"], "index": det["index"], "score": det["score"], "box": det["box"],
                       "box_index": int(box)})
    return chosen, targets


def _explain_chunk(chunk, *, explainer, meta, task, method, save_dir, save_raw, sanity, return_maps, choose, layer):
    from zoo.explaining import render
    from zoo.inference import original_loader

    input_hw = tuple(meta["input_shape"][:2])
    good = [r for r in chunk if r[5] is None]
    results: dict[int, dict] = {}
    if good:
        batch = np.stack([r[2] for r in good])
        chosen, targets = choose(batch, [r[3] for r in good])
        keep = [k for k, c in enumerate(chosen) if "error" not in c]
        for k, c in enumerate(chosen):
            if "error" in c:
                results[good[k][0]] = {"error": c["error"]}
        if keep:
            maps, index, shown = explainer.explain(batch[keep], targets[keep])
            if task.name == "classification":
                fields = _class_fields(shown, index, [good[k][3] for k in keep], meta, task)
            else:
                fields = [chosen[k] for k in keep]
            correlations = [None] * len(keep)
            if sanity:
                from zoo.explaining.sanity import randomised, spearman

                fixed = targets[keep] if task.name == "detection" else index.astype(np.int32)
                with randomised(explainer.model):
                    random_maps = explainer.explain(batch[keep], fixed)[0]
                correlations = [spearman(render.resample(a, input_hw), render.resample(b, input_hw))
                                for a, b in zip(maps, random_maps)]
            for n, k in enumerate(keep):
                results[good[k][0]] = {"fields": fields[n], "map": maps[n], "sanity": correlations[n]}
    for index_, source, _, info, image, error in chunk:
        if error is not None:
            yield {"source": source, "ok": False, "error": error}
            continue
        result = results[index_]
        if "error" in result:
            yield {"source": source, "ok": False, "error": result["error"]}
            continue
        values = render.to_original(result["map"], info, input_hw)
        point = render.peak(result["map"], info, input_hw)
        record = {"source": source, "ok": True, **result["fields"], "method": method, "peak": point, "heatmap": None}
        if layer is not None:
            record["layer"] = layer
        if sanity:
            rho = result["sanity"]
            record["sanity"] = None if rho is None else round(rho, 4)
        if save_dir is not None:
            try:
                original = image if image is not None else original_loader(meta, max_pixels=None)(source)
                record["heatmap"] = str(render.save_heatmap(save_dir, source, original, values, point, method=method))
                if save_raw:
                    record["raw"] = str(render.save_raw(save_dir, source, values, method=method))
            except Exception as exc:  # a failed drawing is this input's failure, not the run's
                record = {"source": source, "ok": False,
                          "error": " ".join(f"could not save the artefact: {exc}".split())[:500]}
        if return_maps and record["ok"]:
            record["map"] = values
        yield record


def _class_fields(shown, index, infos, meta, task) -> list[dict]:
    """{label, index, score} of the explained class per image, scores as zoo.predict reports them."""
    classes = max(2, int(np.prod(shown.shape[1:])))
    records = task.postprocess(shown, infos, meta, {"top_k": classes})
    labels = list(meta.get("labels") or [])
    out = []
    for record, i in zip(records, index):
        scores = {p["index"]: p["score"] for p in record["predictions"]}
        i = int(i)
        out.append({"label": labels[i] if i < len(labels) else str(i), "index": i, "score": scores.get(i, 0.0)})
    return out
