"""ClassificationTask: the hooks the engine (zoo.training, zoo.inference, zoo.evaluation) drives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import UsageError
from zoo.training.options import chosen_weights
from zoo.training.task import Task, TaskData, first_output


@dataclass(frozen=True)
class ClassificationOptions:
    """`--opt key=value` of classification."""

    hub_scale: float = 1 / 255  # "hub:PATH" models: pixels in [0, 255] times this (TF-Hub expects [0, 1])

    def __post_init__(self) -> None:
        if not self.hub_scale > 0:
            raise UsageError(f"`hub_scale` must be > 0 (1/255 maps pixels to [0, 1]). Received: hub_scale={self.hub_scale}.")


class ClassificationTask(Task):
    """Image classification: class folders or a CSV `path,label` -> a softmax classifier; top-k labels."""

    name = "classification"
    native_size = True  # from scratch, train at the images' own size (zoo.training.task.Task)
    options_class = ClassificationOptions

    # --- prediction (prepare: the base's resize policy from the metadata) ---

    def postprocess(self, outputs: Any, infos: list[dict], meta: dict, options: dict) -> list[dict]:
        """Top-k {label, index, score} per image; logits become probabilities by softmax, and one
        sigmoid unit is the probability of class 1."""
        scores = first_output(outputs).astype(np.float64)
        scores = scores.reshape(scores.shape[0], -1)
        if scores.shape[1] == 1:
            p = np.clip(scores[:, 0], 0.0, 1.0)
            scores = np.stack([1.0 - p, p], axis=1)
        elif not _are_probabilities(scores):
            shifted = scores - scores.max(axis=1, keepdims=True)
            scores = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        labels = list(meta.get("labels") or [])
        k = min(int(options.get("top_k", 5)), scores.shape[1])
        records = []
        for row in scores:
            top = np.argsort(-row, kind="stable")[:k]
            records.append({"predictions": [
                {"label": labels[i] if i < len(labels) else str(int(i)), "index": int(i), "score": round(float(row[i]), 6)}
                for i in top
            ]})
        return records

    def save(self, record: dict, image: np.ndarray, meta: dict, save_dir) -> None:
        """The input with its top predictions written in the corner, as PNG."""
        from zoo.data.sources import artefact_path
        from zoo.files import save_image
        from zoo.tasks.classification.draw import draw_predictions

        lines = [f"{p['label']} {p['score']:.2f}" for p in record.get("predictions", [])[:5]]
        save_image(draw_predictions(image, lines), artefact_path(save_dir, record["source"], suffix=".png"))

    # --- training ---

    def check_data(self, data, opts) -> None:
        """The layout checks of load_data without decoding or TensorFlow."""
        from zoo.tasks.classification.data import check_same_classes, scan

        index = scan(data)
        if opts.val:
            check_same_classes(index, scan(opts.val, role="--val"), opts.val)

    def load_data(self, data, opts) -> TaskData:
        """Class folders or a CSV -> decoded, resized uint8 arrays -> unbatched (x, one_hot[, weight])."""
        import tensorflow as tf

        from zoo.tasks.classification import data as dc

        h, w, c = opts.input_shape
        index = dc.scan(data)
        val_index = None
        if opts.val:
            val_index = dc.scan(opts.val, role="--val")
            dc.check_same_classes(index, val_index, opts.val)
        workdir = Path(opts.workdir) if opts.workdir else None
        verbose = bool(opts.verbose)
        pixels, ok, skipped = dc.decode_all(index.paths, size=(h, w), channels=c, workdir=workdir, progress=verbose)
        labels = index.labels
        if val_index is not None:
            vpix, vok, vskipped = dc.decode_all(val_index.paths, size=(h, w), channels=c, progress=verbose)
            train_idx = np.flatnonzero(ok)
            val_x, val_y = vpix[vok], val_index.labels[vok]
            skipped += vskipped
        else:
            tr, va = dc.stratified_split(labels[ok], fraction=opts.val_split, seed=opts.seed)
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
        if opts.class_weights == "auto" and counts.max() > 1.5 * counts.min():  # only a real imbalance is reweighted
            weights = dc.class_weights(train_y, k)[train_y]
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
        return TaskData(train=train, val=val, labels=list(index.classes), summary=summary,
                        extras={"val_arrays": (val_x, val_y)}, num_train=len(train_y), num_val=len(val_y),
                        augment=dc.augmenter(opts.augment, seed=opts.seed, channels=c, flip=opts.flip))

    def build_model(self, arch, data: TaskData, opts):
        """A registry name with weights (new head for the data's classes), a model directory /
        keras.Model to continue (head replaced if the labels differ), or "hub:PATH" + a new head."""
        import zoo
        from zoo.modeldir import attach_meta, get_meta
        from zoo.tasks.classification.data import RESIZE
        from zoo.tasks.classification.model import hub_classifier, reset_classifier
        from zoo.training.freeze import replace_head

        labels = list(data.labels)
        shape = tuple(opts.input_shape)
        if isinstance(arch, str) and arch.startswith("hub:"):
            model = hub_classifier(arch[4:], len(labels), shape, scale=opts.task_options.hub_scale,
                                   dropout=opts.dropout)
        elif not isinstance(arch, str) or Path(arch).exists():
            model = zoo.load_model(arch) if isinstance(arch, str) else arch
            old = get_meta(model)
            if list(old.get("labels") or []) != labels:
                model = replace_head(model, len(labels), dropout=opts.dropout)
            attach_meta(model, {**old, "finetuned_from": str(arch) if isinstance(arch, str) else old.get("arch")})
        else:
            weights = chosen_weights(arch, opts.weights)
            model = zoo.build(arch, weights=weights, num_classes=len(labels), input_shape=shape)
            if weights is not None and list(get_meta(model).get("labels") or []) != labels:
                reset_classifier(model, seed=opts.seed)
        meta = get_meta(model)
        preprocessing = {k: v for k, v in (meta.get("preprocessing") or {}).items() if k != "crop_pct"}
        meta.update(task=self.name, labels=labels, input_shape=list(shape), preprocessing={**preprocessing, **RESIZE})
        attach_meta(model, meta)
        return model

    def loss(self, data: TaskData, opts):
        import keras

        return keras.losses.CategoricalCrossentropy(label_smoothing=opts.label_smoothing)

    def metrics(self, data: TaskData, opts) -> list:
        import keras

        out = [keras.metrics.CategoricalAccuracy(name="accuracy")]
        if len(data.labels) > 5:
            out.append(keras.metrics.TopKCategoricalAccuracy(5, name="top5"))
        return out

    def monitor(self, opts) -> tuple[str, str]:
        return "val_accuracy", "max"

    def metadata(self, model, data: TaskData, opts) -> dict[str, Any]:
        """Validation metrics of the final model (accuracy, top-5, macro F1) for metadata.json; the
        full scores stay in data.extras for report's confusion matrix."""
        from zoo.tasks.classification.metrics import classification_metrics, predict_probs

        val_x, val_y = data.extras.get("val_arrays", (None, None))
        if val_x is None or not len(val_y):
            return {}
        scores = classification_metrics(predict_probs(model, val_x, opts.batch_size), val_y, data.labels)
        data.extras["val_scores"] = scores
        keep = ("accuracy", "top5_accuracy", "macro_f1", "num_images")
        return {"metrics": {k: v for k, v in scores.items() if k in keep}}

    def evaluate(self, model, meta: dict, data_dir, options: dict) -> dict[str, Any]:
        """Metrics of `model` on labelled class folders / CSV `data_dir` (its classes must be among
        the model's labels). `options`: batch_size, verbose."""
        from zoo.tasks.classification import data as dc
        from zoo.tasks.classification.metrics import classification_metrics, predict_probs

        labels = list(meta.get("labels") or [])
        index = dc.scan(data_dir)
        if not labels:
            raise UsageError("The model has no labels in its metadata, so its outputs cannot be matched to class folders.")
        unknown = sorted(set(index.classes) - set(labels))
        if unknown:
            raise UsageError(f"Classes {unknown} of {str(data_dir)!r} are not among the model's {len(labels)} labels "
                             f"({', '.join(labels[:5])}...). Rename the folders to the model's labels.")
        remap = np.asarray([labels.index(c) for c in index.classes])
        h, w, c = (int(d) for d in meta.get("input_shape") or model.input_shape[1:])
        pixels, ok, skipped = dc.decode_all(index.paths, size=(h, w), channels=c,
                                            progress=bool(options.get("verbose", 0)))
        probs = predict_probs(model, pixels[ok], int(options.get("batch_size", 32)))
        scores = classification_metrics(probs, remap[index.labels[ok]], labels)
        scores["skipped"] = len(skipped)
        return scores

    def report(self, model, meta: dict, data: TaskData, out_dir) -> None:
        """confusion_matrix.png of the validation set."""
        from zoo.tasks.classification.draw import draw_confusion

        scores = data.extras.get("val_scores")
        if scores:
            draw_confusion(np.asarray(scores["confusion_matrix"]), scores["labels"], Path(out_dir) / "confusion_matrix.png")


def _are_probabilities(scores: np.ndarray) -> bool:
    return bool(np.all(scores >= -1e-6) and np.all(scores <= 1 + 1e-6)
                and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3))
