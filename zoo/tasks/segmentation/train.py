"""The segmentation task's training side (zoo/tasks/base.py): data, model, loss, metrics,
metadata, evaluation and report. zoo/tasks/segmentation.py delegates to these functions.

Task options (`--opt key=value`, or options["task_options"]):
    skip_bad=1            skip (and count) pairs with a missing mask, a size mismatch or bad values
                          instead of stopping with an error naming the file
    class_weights=median  median-frequency class weights (Eigen & Fergus), or a list "1,2,0.5";
                          the trainer's class_weights="auto" means none for segmentation (as
                          torchvision's references), "none" too
    head_channels=N, head_kernel=K, dropout=P, backbone_weights=TAG   FCN options (zoo.models.fcn)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import UsageError
from zoo.tasks.base import TaskData

RESIZE = {"resize": "squash", "interpolation": "bilinear"}  # what predict must do; recorded in metadata
FCN_OPTIONS = ("head_channels", "head_kernel", "dropout", "backbone_weights", "learn_final_upsampling")


def _task_options(options: dict[str, Any]) -> dict[str, Any]:
    return dict(options.get("task_options") or {})


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def check_data(data, options: dict[str, Any]) -> None:
    """Layout checks without decoding (fails fast, before TensorFlow loads)."""
    from zoo.tasks.segmentation import data as ds

    skip = _flag(_task_options(options).get("skip_bad", False))
    layout = ds.find_layout(data, skip_bad=skip)
    if options.get("val"):
        val = ds.find_layout(options["val"], skip_bad=skip, role="--val")
        _check_same_labels(layout.labels, val.labels, options["val"])


def _check_same_labels(train: list[str], val: list[str], where) -> None:
    if train != val:
        raise UsageError(f"--val {str(where)!r} must have the same classes as DATA ({len(train)}: "
                         f"{', '.join(train[:4])}...). Received {len(val)}: {', '.join(val[:4])}... Give it the same classes.txt.")


def load_data(data, options: dict[str, Any]) -> TaskData:
    """images/ + masks/ (or VOC) -> decoded, checked, resized arrays -> unbatched (image float32, mask int32)."""
    import tensorflow as tf

    from zoo.tasks.segmentation import data as ds

    h, w, c = options["input_shape"]
    topts = _task_options(options)
    skip = _flag(topts.get("skip_bad", False))
    verbose = bool(options.get("verbose", 1))
    layout = ds.find_layout(data, skip_bad=skip)
    labels = layout.labels
    k = len(labels)
    val_pairs, val_from = layout.val, layout.kind if layout.val is not None else "split"
    if options.get("val"):
        vl = ds.find_layout(options["val"], skip_bad=skip, role="--val")
        _check_same_labels(labels, vl.labels, options["val"])
        val_pairs, val_from = vl.val or vl.train, "--val"
    x, y, skipped = ds.decode_pairs(layout.train, size=(h, w), num_classes=k, channels=c, skip_bad=skip, progress=verbose)
    if val_pairs is not None:
        vx, vy, vskipped = ds.decode_pairs(val_pairs, size=(h, w), num_classes=k, channels=c, skip_bad=skip,
                                           progress=verbose)
        skipped += vskipped
    else:
        order = np.random.default_rng(int(options.get("seed", 0))).permutation(len(x))
        n_val = int(round(len(x) * float(options.get("val_split", 0.2))))
        if n_val and len(x) - n_val < 1:
            n_val = 0
        vx, vy = x[order[:n_val]], y[order[:n_val]]
        x, y = x[order[n_val:]], y[order[n_val:]]
    if not len(x):
        raise UsageError(f"No usable image/mask pair in DATA {str(data)!r} ({len(skipped)} skipped; first: "
                         f"{skipped[0][0] if skipped else '?'}: {skipped[0][1] if skipped else ''}).")
    counts = ds.class_pixels(y, k)
    weights = _class_weights(topts.get("class_weights", options.get("class_weights")), counts, k)
    if weights is not None:
        from zoo.tasks.segmentation.metrics import normalise_class_weights

        weights = normalise_class_weights(weights, counts)

    def to_float(image, mask):
        return tf.cast(image, tf.float32), tf.cast(mask, tf.int32)

    train = tf.data.Dataset.from_tensor_slices((x, y)).map(to_float)
    val = tf.data.Dataset.from_tensor_slices((vx, vy)).map(to_float) if len(vx) else None
    summary = {"source": layout.kind, "classes": k, "train": int(len(x)), "val": int(len(vx)), "val_from": val_from,
               "skipped": len(skipped), "pixels_per_class_train": {labels[i]: int(n) for i, n in enumerate(counts)},
               "class_weights": None if weights is None else [round(float(v), 4) for v in weights]}
    if skipped:
        summary["skipped_files"] = [f"{p}: {why}" for p, why in skipped[:20]]
        if verbose:
            print(f"skipped {len(skipped)} image/mask pairs (first: {skipped[0][0]}: {skipped[0][1]})", flush=True)
    td = TaskData(train=train, val=val, labels=list(labels), summary=summary,
                  extras={"val_arrays": (vx, vy), "class_weights": weights}, num_train=len(x), num_val=len(vx))
    td.augment = _train_batches(ds.augmenter(options.get("augment", "none"), seed=int(options.get("seed", 0))), weights)
    return td


def _train_batches(augment, weights):
    """The trainer's per-batch hook: paired augmentation, then per-pixel class weights (computed
    from the augmented masks, so they move with them)."""
    if weights is None:
        return augment
    from zoo.tasks.segmentation.metrics import pixel_weights

    table = [float(w) for w in weights]

    def apply(images, masks, *rest):
        if augment is not None:
            images, masks = augment(images, masks)[:2]
        return images, masks, pixel_weights(masks, table)

    return apply


def _class_weights(value: Any, counts: np.ndarray, k: int) -> np.ndarray | None:
    from zoo.tasks.segmentation.data import median_frequency_weights

    if value is None or str(value).lower() in ("auto", "none", "", "0", "false"):
        return None
    if str(value).lower() in ("median", "median_frequency", "balanced"):
        return median_frequency_weights(counts)
    parts = value if isinstance(value, (list, tuple)) else str(value).split(",")
    try:
        weights = np.asarray([float(p) for p in parts], np.float32)
    except ValueError:
        raise UsageError(f"`class_weights` must be 'median', 'none' or {k} numbers separated by commas. "
                         f"Received: class_weights={value!r}.") from None
    if len(weights) != k or (weights < 0).any():
        raise UsageError(f"`class_weights` needs {k} non-negative numbers (one per class). Received {len(weights)}: {value!r}.")
    return weights


def build_model(arch, data: TaskData, options: dict[str, Any]):
    """A registry FCN for the data's classes (backbone from --backbone), or a model directory to continue."""
    import zoo
    from zoo.modeldir import attach_meta, get_meta

    labels = list(data.labels)
    shape = tuple(options["input_shape"])
    topts = _task_options(options)
    if not isinstance(arch, str) or Path(arch).exists():
        model = zoo.load_model(arch) if isinstance(arch, str) else arch
        old = get_meta(model)
        if int(model.output_shape[-1]) != len(labels):
            raise UsageError(f"The model predicts {model.output_shape[-1]} classes but the data has {len(labels)}. "
                             f"Start from a registry name (e.g. fcn8s) to train a new head.")
        meta = {**old, "finetuned_from": str(arch) if isinstance(arch, str) else old.get("arch")}
    else:
        from zoo.registry import get_spec

        spec = get_spec(arch)
        if spec.task != "segmentation":
            raise UsageError(f"{arch!r} is a {spec.task} model; segmentation data needs fcn32s, fcn16s or fcn8s.")
        fcn = {key: _option_value(key, topts[key]) for key in FCN_OPTIONS if key in topts}
        backbone = options.get("backbone") or spec.options.get("backbone", "vgg16")
        weights = options.get("weights")
        fcn_weights = None
        if weights not in (None, "none", "None"):
            from zoo.pretrained.manifest import tags_for

            own = tags_for(spec.name)
            if weights == "auto":
                fcn_weights = own[0] if own else None
                if fcn_weights is None and "backbone_weights" not in fcn:
                    fcn.setdefault("backbone_weights", "imagenet" if "imagenet" in tags_for(backbone) else None)
            elif weights in own or Path(str(weights)).exists():
                fcn_weights = weights
            else:  # a tag of the backbone, e.g. --weights imagenet
                fcn.setdefault("backbone_weights", weights)
        if fcn.get("backbone_weights") is None:
            fcn.pop("backbone_weights", None)
        model = zoo.build(spec.name, weights=fcn_weights, num_classes=len(labels), input_shape=shape,
                          backbone=backbone, **fcn)
        meta = get_meta(model)
        meta["backbone"] = backbone
        if fcn.get("backbone_weights"):
            meta.setdefault("weights", {"origin": f"{backbone}:{fcn['backbone_weights']}"})
    pre = dict(meta.get("preprocessing") or {})
    pre.update(RESIZE)
    pre.pop("crop_pct", None)
    meta.update(task="segmentation", labels=labels, input_shape=list(shape), preprocessing=pre, ignore_index=255)
    attach_meta(model, meta)
    return model


def _option_value(key: str, value: Any) -> Any:
    if key in ("head_channels", "head_kernel"):
        return int(value)
    if key == "dropout":
        return float(value)
    if key == "learn_final_upsampling":
        return _flag(value)
    return value


def loss(data: TaskData, options: dict[str, Any]):
    """Cross-entropy ignoring 255; class weights come with the batches (see `_train_batches`)."""
    from zoo.tasks.segmentation.metrics import masked_cross_entropy

    return masked_cross_entropy()


def metrics(data: TaskData, options: dict[str, Any]):
    from zoo.tasks.segmentation.metrics import mean_iou_metric

    return [mean_iou_metric(len(data.labels))]


def monitor(options: dict[str, Any]) -> tuple[str, str]:
    return "val_miou", "max"


def predict_masks(model, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Argmax class of every pixel for a batch of images at the model's size."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(images.astype(np.float32)).batch(batch_size)
    preds = []
    for batch in ds:
        preds.append(np.asarray(model(batch, training=False)).argmax(axis=-1))
    return np.concatenate(preds) if preds else np.zeros((0,) + images.shape[1:3], np.int64)


def metadata(model, data: TaskData, options: dict[str, Any]) -> dict[str, Any]:
    """Validation metrics of the final model (at the training size) for metadata.json."""
    from zoo.tasks.segmentation.metrics import ConfusionMatrix

    vx, vy = data.extras.get("val_arrays", (None, None))
    if vx is None or not len(vx):
        return {}
    cm = ConfusionMatrix(len(data.labels))
    pred = predict_masks(model, vx, int(options.get("batch_size", 8)))
    cm.update(vy, pred)
    scores = cm.scores(data.labels)
    data.extras["val_scores"] = scores
    data.extras["val_pred"] = pred[:4]
    keep = ("miou", "pixel_accuracy", "mean_accuracy", "per_class_iou")
    return {"metrics": {k: scores[k] for k in keep}, "ignore_index": 255}


def evaluate(model, meta: dict[str, Any], data_dir, options: dict[str, Any]) -> dict[str, Any]:
    """miou, per_class_iou, pixel_accuracy, mean_accuracy at each image's ORIGINAL size (scores are
    resized back before the argmax, as `zoo predict` does). Uses the val split when DATA has one."""
    from concurrent.futures import ThreadPoolExecutor

    from zoo.tasks.segmentation import data as ds
    from zoo.tasks.segmentation import TASK, labels_for, scores_to_mask
    from zoo.tasks.segmentation.metrics import ConfusionMatrix

    skip = _flag(options.get("skip_bad", False))
    layout = ds.find_layout(data_dir, skip_bad=skip)
    pairs = layout.val or layout.train
    num_classes = int(model.output_shape[-1])
    labels = labels_for(meta, num_classes)
    if meta.get("labels") and list(layout.labels[: len(labels)]) != labels[: len(layout.labels)]:
        raise UsageError(f"The classes of {str(data_dir)!r} ({', '.join(layout.labels[:4])}...) are not the model's "
                         f"({', '.join(labels[:4])}...). Evaluate on data with the model's classes.txt.")
    shape = meta.get("input_shape") or list(model.input_shape[1:])
    h, w, c = (int(d) for d in shape)
    run_meta = {**meta, "input_shape": [h, w, c]}
    cm = ConfusionMatrix(num_classes)
    batch_size = int(options.get("batch_size", 8))
    skipped = list(pairs.skipped)

    def one(i):
        try:
            image, mask = ds.load_pair(pairs.images[i], pairs.masks[i], num_classes=num_classes, channels=c)
        except Exception as exc:  # noqa: BLE001 (skip_bad: counted; otherwise re-raised below)
            return i, None, None, exc
        array, info = TASK.prepare(image, run_meta)
        return i, array, (mask, info), None

    n = len(pairs.images)
    with ThreadPoolExecutor(4) as pool:
        for start in range(0, n, batch_size):
            results = list(pool.map(one, range(start, min(n, start + batch_size))))
            good = []
            for i, array, extra, exc in results:
                if exc is not None:
                    if not skip:
                        raise exc if isinstance(exc, UsageError) else UsageError(str(exc)) from None
                    skipped.append((str(pairs.images[i]), str(exc)))
                else:
                    good.append((array, extra))
            if not good:
                continue
            batch = np.stack([a for a, _ in good]).astype(np.float32)
            scores = np.asarray(model(batch, training=False))
            for row, (_, (mask, info)) in zip(scores, good):
                cm.update(mask, scores_to_mask(row, info["orig_size"]))
    out = cm.scores(labels)
    out.update(images=n - (len(skipped) - len(pairs.skipped)), skipped=len(skipped))
    return out


def report(model, meta: dict[str, Any], data: TaskData, out_dir) -> None:
    """iou.png (per-class IoU of the validation set) and val_examples.png (image | truth | prediction)."""
    scores = data.extras.get("val_scores")
    if not scores:
        return
    draw_iou(scores, Path(out_dir) / "iou.png")
    vx, vy = data.extras.get("val_arrays", (None, None))
    pred = data.extras.get("val_pred")
    if vx is not None and pred is not None and len(pred):
        draw_examples(vx[: len(pred)], vy[: len(pred)], pred, Path(out_dir) / "val_examples.png")


def draw_iou(scores: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zoo.training.checkpoint import atomic_save_figure

    names = list(scores["per_class_iou"])
    values = [v if v is not None else 0.0 for v in scores["per_class_iou"].values()]
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * len(names) + 2), 4))
    ax.bar(range(len(names)), values, color="tab:blue")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("IoU")
    ax.set_title(f"validation: mIoU {scores['miou']:.3f}, pixel accuracy {scores['pixel_accuracy']:.3f}")
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)
    return path


def draw_examples(images: np.ndarray, truth: np.ndarray, pred: np.ndarray, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zoo.tasks.segmentation.data import voc_palette
    from zoo.training.checkpoint import atomic_save_figure

    palette = voc_palette()
    n = len(images)
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.5 * n), squeeze=False)
    for i in range(n):
        for ax, picture, title in zip(axes[i], (images[i].astype(np.uint8), palette[truth[i]], palette[pred[i]]),
                                      ("image", "truth", "prediction")):
            ax.imshow(picture.squeeze() if picture.shape[-1] == 1 else picture)
            ax.set_axis_off()
            if i == 0:
                ax.set_title(title)
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)
    return path
