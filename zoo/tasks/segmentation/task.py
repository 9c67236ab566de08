"""SegmentationTask: the hooks the engine (zoo.training, zoo.inference, zoo.evaluation) drives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import UsageError
from zoo.tasks.segmentation.masks import IGNORE_INDEX
from zoo.tasks.segmentation.options import SegmentationOptions
from zoo.training.task import Task, TaskData

# What predict must do to an image, recorded in the metadata: masks align pixel for pixel only
# when the whole image is squashed to the model input, never cropped or letterboxed.
RESIZE = {"resize": "squash", "interpolation": "bilinear"}


class SegmentationTask(Task):
    """Semantic segmentation: images/ + masks/ (or VOC) -> an FCN; a class per pixel."""

    name = "segmentation"
    options_class = SegmentationOptions

    # --- prediction ---

    def prepare(self, image: np.ndarray, meta: dict) -> tuple[np.ndarray, dict]:
        """Squash to the model input (bilinear, like training); remember the original size."""
        from zoo.data.images import resize_for_model

        prep = meta.get("preprocessing") or {}
        height, width = meta["input_shape"][:2]
        return resize_for_model(image, (height, width), resize="squash",
                                interpolation=prep.get("interpolation", "bilinear"))

    def postprocess(self, outputs: Any, infos: list[dict], meta: dict, options: dict) -> list[dict]:
        """A mask PNG at the original size and the class fractions for each image. The scores are
        resized back to the original size (bilinear, per class) before the argmax."""
        from zoo.tasks.segmentation.masks import write_mask
        from zoo.tasks.segmentation.predict import class_fractions, labels_for, mask_paths, scores_to_mask, single_output

        scores = single_output(outputs)
        labels = labels_for(meta, scores.shape[-1])
        paths = mask_paths(options)
        records = []
        for row, info in zip(scores, infos):
            mask = scores_to_mask(row, info["orig_size"])
            path = write_mask(next(paths), mask)
            records.append({"mask": str(path), "classes": class_fractions(mask, labels)})
        return records

    def save(self, record: dict, image: np.ndarray, meta: dict, save_dir) -> None:
        """<stem>_mask.png (class indices, VOC palette) and <stem>_overlay.png in save_dir."""
        import os

        from zoo.data.sources import artefact_path
        from zoo.files import save_image
        from zoo.tasks.segmentation.draw import overlay
        from zoo.tasks.segmentation.masks import read_mask
        from zoo.tasks.segmentation.predict import labels_for

        mask_path = artefact_path(save_dir, record["source"], suffix="_mask.png")
        overlay_path = mask_path.with_name(mask_path.name[: -len("_mask.png")] + "_overlay.png")
        current = Path(record["mask"])
        mask = read_mask(current)
        os.replace(current, mask_path)  # same folder: postprocess wrote it into save_dir
        record["mask"] = str(mask_path)
        labels = labels_for(meta, int(max(len(meta.get("labels") or []), mask.max() + 1)))
        save_image(overlay(image, mask, labels), overlay_path)

    # --- training ---

    def check_data(self, data, opts) -> None:
        """The layout checks of load_data, without decoding a pixel or loading TensorFlow."""
        from zoo.tasks.segmentation.data import find_splits

        find_splits(data, opts.val, skip_bad=opts.task_options.skip_bad)

    def load_data(self, data, opts) -> TaskData:
        """Pairs decoded and checked once, resized to the input size -> unbatched (image, mask)
        datasets; paired augmentation and class weights run on the trainer's batches."""
        from zoo.tasks.segmentation import data as ds
        from zoo.tasks.segmentation.augment import augmenter, batch_hook
        from zoo.tasks.segmentation.loss import class_weight_table

        h, w, c = opts.input_shape
        skip = opts.task_options.skip_bad
        layout, val_pairs, val_from = ds.find_splits(data, opts.val, skip_bad=skip)
        labels, k = list(layout.labels), len(layout.labels)
        decode = dict(size=(h, w), num_classes=k, channels=c, skip_bad=skip, progress=bool(opts.verbose))
        x, y, skipped = ds.decode_pairs(layout.train, **decode)
        if val_pairs is not None:
            vx, vy, val_skipped = ds.decode_pairs(val_pairs, **decode)
            skipped += val_skipped
        else:
            (x, y), (vx, vy) = ds.random_split(x, y, fraction=opts.val_split, seed=opts.seed)
        if not len(x):
            first = f"{skipped[0][0]}: {skipped[0][1]}" if skipped else "?"
            raise UsageError(f"No usable image/mask pair in DATA {str(data)!r} ({len(skipped)} skipped; first: {first}).")
        counts = ds.class_pixels(y, k)
        weights = class_weight_table(opts.task_options.class_weights, counts)
        summary = {"source": layout.kind, "classes": k, "train": int(len(x)), "val": int(len(vx)), "val_from": val_from,
                   "skipped": len(skipped), "pixels_per_class_train": {labels[i]: int(n) for i, n in enumerate(counts)},
                   "class_weights": None if weights is None else [round(float(v), 4) for v in weights]}
        if skipped:
            summary["skipped_files"] = [f"{p}: {why}" for p, why in skipped[:20]]
            if opts.verbose:
                print(f"skipped {len(skipped)} image/mask pairs (first: {skipped[0][0]}: {skipped[0][1]})", flush=True)
        return TaskData(train=ds.to_dataset(x, y), val=ds.to_dataset(vx, vy) if len(vx) else None, labels=labels,
                        summary=summary, extras={"val_arrays": (vx, vy), "class_weights": weights},
                        num_train=len(x), num_val=len(vx),
                        augment=batch_hook(augmenter(opts.augment, seed=opts.seed), weights))

    def build_model(self, arch, data: TaskData, opts):
        """A registry FCN for the data's classes (backbone from --backbone), or a model directory /
        keras.Model to continue; metadata says how predict must resize and what 255 means."""
        from zoo.modeldir import attach_meta
        from zoo.tasks.segmentation.train import continue_model, new_fcn

        labels = list(data.labels)
        if not isinstance(arch, str) or Path(arch).exists():
            model, meta = continue_model(arch, labels)
        else:
            model, meta = new_fcn(arch, labels, opts)
        preprocessing = {k: v for k, v in (meta.get("preprocessing") or {}).items() if k != "crop_pct"}
        meta.update(task=self.name, labels=labels, input_shape=list(opts.input_shape),
                    preprocessing={**preprocessing, **RESIZE}, ignore_index=IGNORE_INDEX)
        attach_meta(model, meta)
        return model

    def loss(self, data: TaskData, opts):
        """Cross-entropy ignoring 255; class weights come with the batches (augment.batch_hook)."""
        from zoo.tasks.segmentation.loss import masked_cross_entropy

        return masked_cross_entropy()

    def metrics(self, data: TaskData, opts) -> list:
        from zoo.tasks.segmentation.metrics import mean_iou_metric

        return [mean_iou_metric(len(data.labels))]

    def monitor(self, opts) -> tuple[str, str]:
        return "val_miou", "max"

    def metadata(self, model, data: TaskData, opts) -> dict[str, Any]:
        """Validation metrics of the final model (at the training size) for metadata.json; the
        full scores and a few predictions stay in data.extras for `report`."""
        from zoo.tasks.segmentation.metrics import ConfusionMatrix, predict_masks

        vx, vy = data.extras.get("val_arrays", (None, None))
        if vx is None or not len(vx):
            return {}
        cm = ConfusionMatrix(len(data.labels))
        pred = predict_masks(model, vx, opts.batch_size)
        cm.update(vy, pred)
        scores = cm.scores(data.labels)
        data.extras["val_scores"] = scores
        data.extras["val_pred"] = pred[:4]
        keep = ("miou", "pixel_accuracy", "mean_accuracy", "per_class_iou")
        return {"metrics": {k: scores[k] for k in keep}, "ignore_index": IGNORE_INDEX}

    def evaluate(self, model, meta: dict, data_dir, options: dict) -> dict[str, Any]:
        """miou, per_class_iou, pixel_accuracy, mean_accuracy at each image's ORIGINAL size (scores
        are resized back before the argmax, as `zoo predict` does), on DATA's val split when it has
        one. `options`: batch_size, and skip_bad to count bad pairs instead of stopping."""
        from concurrent.futures import ThreadPoolExecutor

        from zoo.tasks.segmentation import data as ds
        from zoo.tasks.segmentation.metrics import ConfusionMatrix
        from zoo.tasks.segmentation.predict import labels_for, scores_to_mask

        skip = bool(options.get("skip_bad", False))
        layout = ds.find_layout(data_dir, skip_bad=skip)
        pairs = layout.val or layout.train
        num_classes = int(model.output_shape[-1])
        labels = labels_for(meta, num_classes)
        if meta.get("labels") and list(layout.labels[: len(labels)]) != labels[: len(layout.labels)]:
            raise UsageError(f"The classes of {str(data_dir)!r} ({', '.join(layout.labels[:4])}...) are not the "
                             f"model's ({', '.join(labels[:4])}...). Evaluate on data with the model's classes.txt.")
        h, w, c = (int(d) for d in (meta.get("input_shape") or model.input_shape[1:]))
        run_meta = {**meta, "input_shape": [h, w, c]}
        cm = ConfusionMatrix(num_classes)
        batch_size = int(options.get("batch_size", 8))
        skipped = list(pairs.skipped)

        def one(i):
            try:
                image, mask = ds.load_pair(pairs.images[i], pairs.masks[i], num_classes=num_classes, channels=c)
            except Exception as exc:  # noqa: BLE001 (skip_bad: counted; otherwise re-raised below)
                return i, None, exc
            array, info = self.prepare(image, run_meta)
            return i, (array, mask, info), None

        n = len(pairs.images)
        with ThreadPoolExecutor(4) as pool:
            for start in range(0, n, batch_size):
                good = []
                for i, item, exc in pool.map(one, range(start, min(n, start + batch_size))):
                    if exc is None:
                        good.append(item)
                    elif skip:
                        skipped.append((str(pairs.images[i]), str(exc)))
                    else:
                        raise exc if isinstance(exc, UsageError) else UsageError(str(exc)) from None
                if good:
                    scores = np.asarray(model(np.stack([a for a, _, _ in good]).astype(np.float32), training=False))
                    for row, (_, mask, info) in zip(scores, good):
                        cm.update(mask, scores_to_mask(row, info["orig_size"]))
        out = cm.scores(labels)
        out.update(images=n - (len(skipped) - len(pairs.skipped)), skipped=len(skipped))
        return out

    def report(self, model, meta: dict, data: TaskData, out_dir) -> None:
        """iou.png (per-class IoU of the validation set) and val_examples.png (image | truth | prediction)."""
        from zoo.tasks.segmentation.draw import draw_examples, draw_iou

        scores = data.extras.get("val_scores")
        if not scores:
            return
        draw_iou(scores, Path(out_dir) / "iou.png")
        vx, vy = data.extras.get("val_arrays", (None, None))
        pred = data.extras.get("val_pred")
        if vx is not None and pred is not None and len(pred):
            draw_examples(vx[: len(pred)], vy[: len(pred)], pred, Path(out_dir) / "val_examples.png")
