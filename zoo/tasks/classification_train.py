"""The classification task's training side (zoo/tasks/base.py): data, model, loss, metrics,
metadata, evaluation and report. zoo/tasks/classification.py delegates to these functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import UsageError
from zoo.tasks.base import TaskData


def check_data(data, options: dict[str, Any]) -> None:
    """The layout checks of load_data without decoding or TensorFlow (fails fast on bad input)."""
    from zoo.data import classification as dc

    index = dc.scan(data)
    if options.get("val"):
        dc.check_same_classes(index, dc.scan(options["val"], role="--val"), options["val"])


def load_data(data, options: dict[str, Any]) -> TaskData:
    """Class folders or a CSV -> decoded, resized uint8 arrays -> unbatched (x, one_hot[, weight])."""
    import tensorflow as tf

    from zoo.data import classification as dc

    h, w, c = options["input_shape"]
    index = dc.scan(data)
    val_index = None
    if options.get("val"):
        val_index = dc.scan(options["val"], role="--val")
        dc.check_same_classes(index, val_index, options["val"])
    workdir = Path(options["workdir"]) if options.get("workdir") else None
    verbose = bool(options.get("verbose", 1))
    pixels, ok, skipped = dc.decode_all(index.paths, size=(h, w), channels=c, workdir=workdir, progress=verbose)
    labels = index.labels
    if val_index is not None:
        vpix, vok, vskipped = dc.decode_all(val_index.paths, size=(h, w), channels=c, progress=verbose)
        train_idx = np.flatnonzero(ok)
        val_x, val_y = vpix[vok], val_index.labels[vok]
        skipped += vskipped
    else:
        tr, va = dc.stratified_split(labels[ok], fraction=float(options.get("val_split", 0.2)),
                                     seed=int(options.get("seed", 0)))
        good = np.flatnonzero(ok)
        train_idx = good[tr]
        val_x, val_y = pixels[good[va]], labels[good[va]]
    k = len(index.classes)
    counts = np.bincount(labels[train_idx], minlength=k)
    empty = [index.classes[i] for i in np.flatnonzero(counts == 0)]
    if not len(train_idx):
        raise UsageError(f"None of the {len(index.paths)} files in DATA {str(data)!r} could be decoded "
                         f"(first: {skipped[0][1] if skipped else '?'}). Check the files.")
    if empty:
        raise UsageError(f"Class(es) {', '.join(repr(e) for e in empty)} have no readable training images "
                         f"after skipping {len(skipped)} corrupt files. Add images to them.")
    train_x, train_y = pixels[train_idx], labels[train_idx]
    weights = None
    if options.get("class_weights", "auto") == "auto":
        cw = dc.class_weights(train_y, k)
        if counts.max() > 1.5 * counts.min():  # only a real imbalance is worth reweighting
            weights = cw[train_y]
    onehot = np.eye(k, dtype=np.float32)
    train_parts = (train_x, onehot[train_y]) + ((weights,) if weights is not None else ())
    train = tf.data.Dataset.from_tensor_slices(train_parts)
    val = tf.data.Dataset.from_tensor_slices((val_x, onehot[val_y])) if len(val_y) else None
    summary = {"source": index.source, "classes": k, "train": int(len(train_y)), "val": int(len(val_y)),
               "skipped": len(skipped), "val_from": "--val" if val_index is not None else "split",
               "per_class_train": {index.classes[i]: int(n) for i, n in enumerate(counts)},
               "class_weights": bool(weights is not None)}
    if skipped:
        summary["skipped_files"] = [f"{p}: {why}" for p, why in skipped[:20]]
        if verbose:
            print(f"skipped {len(skipped)} unreadable files (first: {skipped[0][0]}: {skipped[0][1]})", flush=True)
    td = TaskData(train=train, val=val, labels=list(index.classes), summary=summary,
                  extras={"val_arrays": (val_x, val_y)}, num_train=len(train_y), num_val=len(val_y))
    td.augment = dc.augmenter(options.get("augment", "none"), seed=int(options.get("seed", 0)), channels=c,
                              flip=options.get("flip", "none"))
    return td


def build_model(arch, data: TaskData, options: dict[str, Any]):
    """A registry name with weights (new head for the data's classes), a model directory / keras.Model
    to continue (head replaced if the labels differ), or "hub:PATH" + a new head."""
    from zoo.modeldir import attach_meta, get_meta
    from zoo.training.freeze import replace_head

    labels = list(data.labels)
    k = len(labels)
    shape = tuple(options["input_shape"])
    if isinstance(arch, str) and arch.startswith("hub:"):
        model = _hub_model(arch[4:], k, shape, options)
    elif not isinstance(arch, str) or Path(arch).exists():
        import zoo

        model = zoo.load_model(arch) if isinstance(arch, str) else arch
        old = get_meta(model)
        if list(old.get("labels") or []) != labels:
            model = replace_head(model, k, dropout=float(options.get("dropout", 0.0)))
        meta = {**old, "finetuned_from": str(arch) if isinstance(arch, str) else old.get("arch")}
        attach_meta(model, meta)
    else:
        import zoo

        weights = _weights_for(arch, options.get("weights"))
        model = zoo.build(arch, weights=weights, num_classes=k, input_shape=shape)
        if weights is not None and list(get_meta(model).get("labels") or []) != labels:
            _reset_classifier(model, seed=int(options.get("seed", 0)))
    meta = get_meta(model)
    pre = dict(meta.get("preprocessing") or {})
    from zoo.data.classification import RESIZE

    pre.update(RESIZE)
    pre.pop("crop_pct", None)
    meta.update(task="classification", labels=labels, input_shape=list(shape), preprocessing=pre)
    attach_meta(model, meta)
    return model


def _weights_for(arch: str, weights):
    if weights in (None, "none", "None"):
        return None
    if weights != "auto":
        return weights
    from zoo.pretrained.manifest import tags_for

    tags = tags_for(arch)
    return "imagenet" if "imagenet" in tags else (tags[0] if tags else None)


def _reset_classifier(model, *, seed: int) -> None:
    """The new labels mean nothing to the old classifier: start it from scratch (Glorot, zero bias)."""
    import keras

    from zoo.training.freeze import head_layers

    dense = [l for l in head_layers(model) if type(l).__name__ == "Dense"]
    if not dense:
        return
    layer = dense[-1]
    kernel = keras.initializers.GlorotUniform(seed=seed)(layer.kernel.shape)
    layer.kernel.assign(kernel)
    if layer.bias is not None:
        layer.bias.assign(np.zeros(layer.bias.shape, np.float32))


def _hub_model(path: str, k: int, shape, options):
    """A TF-Hub / SavedModel feature extractor (frozen at first) + a new float32 classifier.
    Pixels in [0, 255] are scaled to [0, 1], the TF-Hub image convention (`--opt hub_scale=...`)."""
    import keras

    from zoo.pretrained.hub import hub_feature_extractor

    scale = float((options.get("task_options") or {}).get("hub_scale", 1 / 255))
    inputs = keras.Input(shape)
    x = keras.layers.Rescaling(scale, name="hub_rescale")(inputs)
    x = hub_feature_extractor(path, trainable=True, name="hub_features")(x)
    if len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if options.get("dropout"):
        x = keras.layers.Dropout(float(options["dropout"]), name="head_dropout")(x)
    x = keras.layers.Dense(k, dtype="float32", name="predictions_dense")(x)
    out = keras.layers.Activation("softmax", dtype="float32", name="predictions")(x)
    model = keras.Model(inputs, out, name="hub_classifier")
    from zoo.modeldir import attach_meta

    attach_meta(model, {"arch": f"hub:{path}", "weights": {"origin": path},
                        "preprocessing": {"mode": "unit", "scale": scale, "mean": [0.0], "std": [1.0],
                                          "in_model": True}})
    return model


def loss(data: TaskData, options: dict[str, Any]):
    import keras

    return keras.losses.CategoricalCrossentropy(label_smoothing=float(options.get("label_smoothing", 0.0)))


def metrics(data: TaskData, options: dict[str, Any]):
    import keras

    out = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    if len(data.labels) > 5:
        out.append(keras.metrics.TopKCategoricalAccuracy(5, name="top5"))
    return out


def monitor(options: dict[str, Any]) -> tuple[str, str]:
    return "val_accuracy", "max"


def metadata(model, data: TaskData, options: dict[str, Any]) -> dict[str, Any]:
    """Validation metrics of the final model (accuracy, top-5, per class) for metadata.json."""
    val_x, val_y = data.extras.get("val_arrays", (None, None))
    if val_x is None or not len(val_y):
        return {}
    probs = _predict(model, val_x, int(options.get("batch_size", 32)))
    scores = classification_metrics(probs, val_y, data.labels)
    data.extras["val_scores"] = scores
    return {"metrics": {k: v for k, v in scores.items() if k in ("accuracy", "top5_accuracy", "macro_f1", "num_images")}}


def _predict(model, x: np.ndarray, batch_size: int) -> np.ndarray:
    """Plain calls, not model.predict: under a multi-worker strategy predict would shard the data."""
    import tensorflow as tf

    call = tf.function(lambda batch: model(tf.cast(batch, tf.float32), training=False))
    outs = [np.asarray(call(x[i : i + batch_size]), np.float32) for i in range(0, len(x), batch_size)]
    return np.concatenate(outs) if outs else np.zeros((0, model.output_shape[-1]), np.float32)


def classification_metrics(probs: np.ndarray, y: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """accuracy, top5_accuracy, per-class precision/recall/F1/support, confusion matrix (rows = truth)."""
    k = len(labels)
    pred = probs.argmax(axis=1)
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y, pred), 1)
    top = np.argsort(-probs, axis=1)[:, : min(5, k)]
    per_class = {}
    for i, name in enumerate(labels):
        tp = cm[i, i]
        p = tp / cm[:, i].sum() if cm[:, i].sum() else 0.0
        r = tp / cm[i].sum() if cm[i].sum() else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        per_class[name] = {"precision": float(p), "recall": float(r), "f1": float(f1), "support": int(cm[i].sum())}
    present = [v for v in per_class.values() if v["support"]]
    return {
        "accuracy": float((pred == y).mean()) if len(y) else 0.0,
        "top5_accuracy": float((top == y[:, None]).any(axis=1).mean()) if len(y) else 0.0,
        "macro_f1": float(np.mean([v["f1"] for v in present])) if present else 0.0,
        "num_images": int(len(y)),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "labels": list(labels),
    }


def evaluate(model, meta: dict[str, Any], data_dir, options: dict[str, Any]) -> dict[str, Any]:
    """Metrics of `model` on labelled class folders / CSV `data_dir` (its classes must be the model's labels)."""
    from zoo.data import classification as dc

    labels = list(meta.get("labels") or [])
    index = dc.scan(data_dir)
    if not labels:
        raise UsageError("The model has no labels in its metadata, so its outputs cannot be matched to class folders.")
    unknown = sorted(set(index.classes) - set(labels))
    if unknown:
        raise UsageError(f"Classes {unknown} of {str(data_dir)!r} are not among the model's {len(labels)} labels "
                         f"({', '.join(labels[:5])}...). Rename the folders to the model's labels.")
    remap = np.asarray([labels.index(c) for c in index.classes])
    shape = meta.get("input_shape") or list(model.input_shape[1:])
    h, w, c = (int(d) for d in shape)
    pixels, ok, skipped = dc.decode_all(index.paths, size=(h, w), channels=c, progress=bool(options.get("verbose", 0)))
    y = remap[index.labels[ok]]
    probs = _predict(model, pixels[ok], int(options.get("batch_size", 32)))
    scores = classification_metrics(probs, y, labels)
    scores["skipped"] = len(skipped)
    return scores


def report(model, meta: dict[str, Any], data: TaskData, out_dir) -> None:
    """confusion_matrix.png of the validation set."""
    scores = data.extras.get("val_scores")
    if scores:
        draw_confusion(np.asarray(scores["confusion_matrix"]), scores["labels"], Path(out_dir) / "confusion_matrix.png")


def draw_confusion(cm: np.ndarray, labels: list[str], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zoo.training.checkpoint import atomic_save_figure

    k = len(labels)
    size = min(14, 3 + 0.45 * k)
    fig, ax = plt.subplots(figsize=(size, size))
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if k <= 30:
        ax.set_xticks(range(k), labels, rotation=90)
        ax.set_yticks(range(k), labels)
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    # Two short lines: one long line is cut off on the narrow figure of a few classes.
    ax.set_title(f"confusion matrix\n{int(cm.sum())} images, accuracy {np.trace(cm) / max(cm.sum(), 1):.3f}",
                 fontsize=10)
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)
    return path
