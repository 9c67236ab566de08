"""The training side of the captioning task (zoo finetune show_and_tell DATA --out DIR).

`options` is the trainer's dict (zoo/tasks/base.py). Captioning reads input_shape, batch_size,
seed, val, val_split, weights (the backbone's: "auto" = its first manifest tag, "none" = random),
backbone (default resnet50), cache_features, epochs, lr, and from `task_options` (`--opt key=value`):
min_count (5), max_length (40: longest caption kept, in words), embed_dim, units, dropout, pooling,
feature, train_backbone (default: false with pretrained weights, true from scratch), beam_size (3),
alpha (1.0).

Images are decoded once (zoo.data.images) and kept as uint8. With a frozen backbone the encoder
then runs once per image: build_model computes the pooled features, swaps the datasets to
(features, tokens) and hands the trainer the decoder; `report` writes the whole captioner
(encoder + trained decoder) as model.keras. With a trainable backbone the whole model trains on images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import UsageError
from zoo.tasks.base import TaskData

DEFAULT_BACKBONE = "resnet50"


def _topts(options: dict) -> dict[str, Any]:
    return dict(options.get("task_options") or {})


def _int(topts: dict, key: str, default: int) -> int:
    value = topts.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UsageError(f"--opt {key} must be a whole number. Received: {key}={value!r}.") from None


def _bool(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def input_shape(options: dict) -> tuple[int, int, int]:
    shape = options.get("input_shape")
    if shape:
        return tuple(int(d) for d in shape)
    size = int(options.get("image_size") or 224)
    return (size, size, 3)


def check_data(data, options: dict) -> None:
    """Fail fast (before TensorFlow loads) on DATA that is not a captioning folder."""
    from zoo.tasks.captioning.data import find_captions_file

    path = Path(data)
    if not path.is_dir():
        raise UsageError(f"Captioning DATA must be a folder with images/ and a captions file. Received: {data!r}.")
    find_captions_file(path)


def _images(items, shape) -> tuple[np.ndarray, list, dict]:
    from zoo.tasks.captioning.data import load_images

    images, kept, errors = load_images([p for p, _ in items], size=shape[:2], channels=shape[2], progress=True)
    return images, [items[i] for i in kept], errors


def load_data(data, options: dict) -> TaskData:
    from zoo.tasks.captioning.data import read_captions, split
    from zoo.tasks.captioning.fit import caption_table
    from zoo.tasks.captioning.text import build_vocabulary, tokenize

    topts = _topts(options)
    shape = input_shape(options)
    captions = read_captions(data)
    summary = dict(captions.summary)
    backbone = options.get("backbone") or DEFAULT_BACKBONE
    weights = _backbone_weights(backbone, options.get("weights", "auto")) if backbone != "tiny" else None
    if weights:
        from zoo.pretrained import resolve_weights

        # Fetch (or find in the cache) the backbone's weights before decoding any image: an offline
        # machine without them fails in a second, not after the whole data set is read.
        resolve_weights(backbone, weights, include_top=False)
    if options.get("val"):
        val_set = read_captions(options["val"])
        train_items, val_items = captions.items, val_set.items
    else:
        train_items, val_items = split(captions.items, val_split=float(options.get("val_split", 0.2)),
                                       seed=int(options.get("seed", 0)))
    x_train, train_items, bad = _images(train_items, shape)
    x_val, val_items, bad_val = _images(val_items, shape)
    if not train_items:
        raise UsageError(f"No training image of {data} could be decoded ({len(bad)} unreadable). Check the images folder.")
    min_count = _int(topts, "min_count", 5)
    vocab = build_vocabulary([c for _, caps in train_items for c in caps], min_count=min_count)
    longest = max(len(tokenize(c)) for _, caps in train_items for c in caps)
    max_length = min(longest, _int(topts, "max_length", 40))
    index, tokens = caption_table(train_items, vocab, max_length=max_length)
    vindex, vtokens = caption_table(val_items, vocab, max_length=max_length)
    summary.update(train_images=len(train_items), val_images=len(val_items), train_captions=len(index),
                   val_captions=len(vindex), unreadable_images=len(bad) + len(bad_val), vocabulary=len(vocab),
                   max_length=max_length)
    extras = {"vocabulary": vocab, "max_length": max_length, "images": (x_train, x_val),
              "tables": ((index, tokens), (vindex, vtokens)), "items": (train_items, val_items)}
    return TaskData(train=_per_caption(x_train, index, tokens),
                    val=_per_caption(x_val, vindex, vtokens) if len(vindex) else None,
                    labels=[], summary=summary, extras=extras, num_train=len(index), num_val=len(vindex) or None)


def _per_caption(sources: np.ndarray, index: np.ndarray, tokens: np.ndarray):
    """Unbatched ((image or features, tokens[:-1]), tokens[1:]); each image is stored once."""
    import tensorflow as tf

    table = tf.constant(sources)
    ds = tf.data.Dataset.from_tensor_slices((index, tokens))
    return ds.map(lambda i, t: ((tf.cast(tf.gather(table, i), tf.float32), t[:-1]), t[1:]),
                  num_parallel_calls=tf.data.AUTOTUNE)


def _backbone_weights(backbone: str, weights: Any) -> str | None:
    if weights in (None, "none", "None"):
        return None
    if weights == "auto":
        from zoo.pretrained.manifest import tags_for

        tags = tags_for(backbone)
        return ("imagenet" if "imagenet" in tags else tags[0]) if tags else None
    return str(weights)


def build_model(arch, data: TaskData, options: dict):
    from zoo.modeldir import attach_meta
    from zoo.models.show_and_tell import build_from_config, make_config
    from zoo.registry import get_spec

    arch = str(arch)
    if Path(arch).exists():
        raise UsageError(f"Continuing a captioning run from {arch!r} is not supported yet; train from "
                         f"'show_and_tell' (the vocabulary is rebuilt from the data).")
    if get_spec(arch).task != "captioning":
        raise UsageError(f"{arch!r} is a {get_spec(arch).task} model; captioning data needs 'show_and_tell' "
                         f"(use --backbone {arch} to put {arch} under the captioner).")
    topts = _topts(options)
    shape = input_shape(options)
    backbone = options.get("backbone") or DEFAULT_BACKBONE
    weights = _backbone_weights(backbone, options.get("weights", "auto")) if backbone != "tiny" else None
    train_backbone = _bool(topts["train_backbone"]) if "train_backbone" in topts else weights is None
    arch_options: dict[str, Any] = {"backbone": backbone, "backbone_weights": weights, "train_backbone": train_backbone,
                                    "vocab_size": len(data.extras["vocabulary"])}
    for key, cast in (("embed_dim", int), ("units", int), ("dropout", float), ("pooling", str), ("feature", str),
                      ("tiny_width", int)):
        if key in topts:
            arch_options[key] = cast(topts[key])
    config = make_config("show_and_tell", **arch_options)
    model = build_from_config(config, input_shape=shape)
    meta = {"arch": "show_and_tell", "task": "captioning", "input_shape": list(shape),
            "preprocessing": {"in_model": True, "resize": "squash", "interpolation": "bilinear"},
            "vocabulary": list(data.extras["vocabulary"]), "max_length": int(data.extras["max_length"]),
            "captioning": {"backbone": backbone, "backbone_weights": weights, "train_backbone": train_backbone,
                           "beam_size": _int(topts, "beam_size", 3), "alpha": float(topts.get("alpha", 1.0)),
                           **{k: v for k, v in arch_options.items() if k not in ("backbone", "backbone_weights",
                                                                                "train_backbone")}}}
    if weights:
        meta["weights"] = {"origin": f"backbone {backbone}: {weights}"}
    attach_meta(model, meta)
    data.extras["model"] = model
    cache = (not train_backbone and options.get("cache_features", "auto") != "off"
             and int(options.get("replicas", 1) or 1) == 1)
    data.extras["cached"] = cache
    if not cache:
        return model
    # Frozen encoder: its features never change, so compute them once per image and train the decoder.
    from zoo.tasks.captioning.fit import encode_images

    batch = max(int(options.get("batch_size", 32)), 32)
    x_train, x_val = data.extras["images"]
    f_train = encode_images(model, x_train, batch_size=batch)
    f_val = encode_images(model, x_val, batch_size=batch) if len(x_val) else np.zeros((0, f_train.shape[1]), "float32")
    data.extras["features"] = (f_train, f_val)
    (index, tokens), (vindex, vtokens) = data.extras["tables"]
    data.train = _per_caption(f_train, index, tokens)
    data.val = _per_caption(f_val, vindex, vtokens) if len(vindex) else None
    decoder = model.get_layer("decoder")
    attach_meta(decoder, meta)
    return decoder


def stages(model, data: TaskData, options: dict):
    from zoo.training.recipe import Stage

    epochs, lr = int(options.get("epochs", 10)), float(options.get("lr", 1e-3))
    if data.extras.get("cached") or model.name == "decoder":
        return [Stage("decoder", epochs, lr, freeze=None)]  # the decoder alone, on cached features
    if model.get_layer("encoder").trainable_weights:
        return [Stage("train", epochs, lr, freeze=None)]  # everything, batch norm included
    # Frozen encoder without a cache (multi-worker, --cache-features off): freeze up to its last layer.
    return [Stage("decoder", epochs, lr, freeze={"until": "encoder_pool", "bn": "frozen"})]


def loss(data: TaskData, options: dict):
    from zoo.tasks.captioning.fit import caption_loss

    return caption_loss()


def metrics(data: TaskData, options: dict) -> list:
    from zoo.tasks.captioning.fit import token_accuracy

    return [token_accuracy()]


def _full(model, data: TaskData | None):
    return (data.extras.get("model") if data is not None else None) or model


def metadata(model, data: TaskData, options: dict) -> dict[str, Any]:
    """vocabulary, max_length, decoding defaults, and BLEU/CIDEr of the trained model on the validation images."""
    from zoo.modeldir import get_meta

    full = _full(model, data)
    meta = get_meta(full)
    out = {k: meta[k] for k in ("arch", "task", "input_shape", "preprocessing", "vocabulary", "max_length",
                                "captioning") if k in meta}
    _, val_items = data.extras["items"]
    if val_items:
        settings = meta.get("captioning", {})
        sources = data.extras["features"][1] if data.extras.get("cached") else data.extras["images"][1]
        out["metrics"] = score(full, sources, [caps for _, caps in val_items], vocab=meta["vocabulary"],
                               beam_size=int(settings.get("beam_size", 3)), max_length=int(meta["max_length"]) + 2,
                               alpha=float(settings.get("alpha", 1.0)), from_features=bool(data.extras.get("cached")))
        out["metrics"]["split"] = "validation"
    return out


def score(model, sources, references: list[list[str]], *, vocab, beam_size: int, max_length: int, alpha: float = 1.0,
          from_features: bool = False, batch_size: int = 64) -> dict[str, Any]:
    from zoo.tasks.captioning.fit import generate
    from zoo.tasks.captioning.metrics import caption_metrics
    from zoo.tasks.captioning.text import tokenize

    outs = generate(model, sources, vocab=vocab, beam_size=beam_size, max_length=max_length, alpha=alpha,
                    from_features=from_features, batch_size=batch_size)
    refs = [[tokenize(c) for c in caps] for caps in references]
    result: dict[str, Any] = {k: round(v, 6) for k, v in caption_metrics(refs, [tokenize(o["caption"]) for o in outs]).items()}
    result.update(num_images=len(outs), num_captions=sum(len(c) for c in references), beam_size=int(beam_size))
    return result


def evaluate(model, meta: dict, data_dir, options: dict | None = None) -> dict[str, Any]:
    """bleu1..bleu4, cider, exact, num_images, num_captions on a captioning folder."""
    from zoo.tasks.captioning.data import load_images, read_captions

    options = dict(options or {})
    if not meta.get("vocabulary"):
        raise UsageError("This captioning model has no vocabulary in its metadata; evaluate a model directory "
                         "written by `zoo finetune show_and_tell`.")
    captions = read_captions(data_dir)
    shape = meta.get("input_shape") or list(model.inputs[0].shape[1:])
    images, kept, errors = load_images([p for p, _ in captions.items], size=tuple(shape[:2]), channels=int(shape[2]))
    settings = meta.get("captioning") or {}
    beam = int(options.get("beam_size") or settings.get("beam_size", 3))
    max_length = int(options.get("max_length") or int(meta.get("max_length", 20)) + 2)
    result = score(model, images, [captions.items[i][1] for i in kept], vocab=meta["vocabulary"], beam_size=beam,
                   max_length=max_length, alpha=float(options.get("alpha", settings.get("alpha", 1.0))),
                   batch_size=int(options.get("batch_size", 32)))
    result.update(skipped=len(errors), **{k: v for k, v in captions.summary.items() if isinstance(v, int)})
    return result


def report(model, meta: dict, data: TaskData, out_dir) -> None:
    """Write the whole captioner (the trainer saved the decoder it trained on cached features) and
    captions.png: validation images with their generated and reference captions."""
    from zoo.modeldir import attach_meta, write_model_dir

    full = _full(model, data)
    if full is not model:
        attach_meta(full, meta)
        write_model_dir(full, out_dir, meta)
    _, val_items = data.extras["items"]
    if not val_items:
        return
    from zoo.tasks.captioning.draw import draw_examples
    from zoo.tasks.captioning.fit import generate

    n = min(8, len(val_items))
    images = data.extras["images"][1][:n]
    settings = meta.get("captioning", {})
    outs = generate(full, images, vocab=meta["vocabulary"], beam_size=int(settings.get("beam_size", 3)),
                    max_length=int(meta["max_length"]) + 2, alpha=float(settings.get("alpha", 1.0)))
    draw_examples(images, [o["caption"] for o in outs], [caps[0] for _, caps in val_items[:n]],
                  Path(out_dir) / "captions.png")
