"""Image captioning as the engine's Task: `zoo finetune show_and_tell|show_attend_tell DATA`, predict,
evaluate.

Prediction: `prepare` (the engine's default) resizes with the metadata's policy; `forward` runs the
encoder once and decodes (greedy with beam_size 1, else beam search; options beam_size,
max_length, alpha); `postprocess` gives each record "caption" and "log_prob", and for an attention
captioner "attention": [{"word", "peak": [x, y]}] (the centre of the most-attended feature-map cell
for each generated word, in pixels of the original image); the option attention_maps=True adds
"attention_maps", float32 (words, rows, columns), the weights themselves. `save` writes the image
with its caption under it, and for an attention captioner <stem>_attention.png: the image once per
word under its attention. The vocabulary and max_length come from metadata.json, so prediction
reproduces the training tokenisation.

Training: images are decoded once and kept as uint8. With a frozen backbone the encoder then runs
once per image: `build_model` computes its features (a pooled vector, or the feature map an
attention captioner looks at), swaps the datasets to (features, tokens) and hands the trainer the
decoder; `report` writes the whole captioner (encoder + trained decoder) as model.keras. With a
trainable backbone the whole model trains on images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.errors import UsageError
from zoo.tasks.captioning.options import CaptioningOptions
from zoo.training.task import Task, TaskData


_DRAW_ONLY = "_attention_maps"  # record key carrying the maps from postprocess to save when not asked for


class CaptioningTask(Task):
    name = "captioning"
    options_class = CaptioningOptions

    # --- prediction ---

    def forward(self, model, batch, meta: dict, options: dict) -> list[dict]:
        from zoo.tasks.captioning.predict import check_model_vocabulary, decoding_options, generate

        vocab = meta.get("vocabulary")
        if not vocab:
            arch = meta.get("arch") or "show_and_tell"
            raise UsageError(f"This {arch} model has no vocabulary: it was not trained. Train it with "
                             f"`zoo finetune {arch} DATA --out DIR` and predict with --model DIR.")
        check_model_vocabulary(model, vocab)
        return generate(model, batch, vocab=vocab, **decoding_options(meta, options))

    def postprocess(self, outputs, infos: list[dict], meta: dict, options: dict) -> list[dict]:
        from zoo.tasks.captioning.predict import attention_records

        records = []
        for out, info in zip(outputs, infos):
            record = {"caption": out["caption"], "log_prob": round(float(out["log_prob"]), 4)}
            if "attention" in out:
                record["attention"], maps = attention_records(out["tokens"], out["attention"], info,
                                                              tuple(meta["input_shape"][:2]))
                if options.get("attention_maps"):
                    record["attention_maps"] = maps
                elif options.get("save_dir") is not None:
                    record[_DRAW_ONLY] = maps  # for save(), which takes it out: records stay JSON
            records.append(record)
        return records

    def save(self, record: dict, image, meta: dict, save_dir) -> None:
        from zoo.data.sources import artefact_path
        from zoo.files import save_image
        from zoo.tasks.captioning.draw import captioned

        maps = record.pop(_DRAW_ONLY, None)
        save_image(captioned(image, record.get("caption", "")), artefact_path(save_dir, record["source"]))
        if "attention" in record:
            from zoo.tasks.captioning.draw import attention_figure

            maps = record["attention_maps"] if maps is None else maps
            attention_figure(image, [a["word"] for a in record["attention"]], maps,
                             artefact_path(save_dir, record["source"], suffix="_attention.png"))

    # --- training ---

    def check_data(self, data, opts) -> None:
        """Fail fast (before TensorFlow loads) on DATA that is not a captioning folder."""
        from zoo.tasks.captioning.data import find_captions_file

        path = Path(data)
        if not path.is_dir():
            raise UsageError(f"Captioning DATA must be a folder with images/ and a captions file. Received: {data!r}.")
        find_captions_file(path)

    def load_data(self, data, opts) -> TaskData:
        """Captions read, images decoded once, the vocabulary built from the training captions."""
        from zoo.tasks.captioning.data import caption_table, per_caption, read_captions, split
        from zoo.tasks.captioning.text import build_vocabulary, tokenize
        from zoo.tasks.captioning.train import backbone_and_weights

        topts: CaptioningOptions = opts.task_options
        captions = read_captions(data)
        summary = dict(captions.summary)
        backbone, weights = backbone_and_weights(opts)
        if weights:
            from zoo.registry import resolve_weights

            # Fetch (or find in the cache) the backbone's weights before decoding any image: an offline
            # machine without them fails in a second, not after the whole data set is read.
            resolve_weights(backbone, weights, include_top=False)
        if opts.val:
            train_items, val_items = captions.items, read_captions(opts.val).items
        else:
            train_items, val_items = split(captions.items, val_split=opts.val_split, seed=opts.seed)
        x_train, train_items, bad = _decode(train_items, opts.input_shape)
        x_val, val_items, bad_val = _decode(val_items, opts.input_shape)
        if not train_items:
            raise UsageError(f"No training image of {data} could be decoded ({len(bad)} unreadable). Check the images folder.")
        vocab = build_vocabulary([c for _, caps in train_items for c in caps], min_count=topts.min_count)
        longest = max(len(tokenize(c)) for _, caps in train_items for c in caps)
        max_length = min(longest, topts.max_length)
        index, tokens = caption_table(train_items, vocab, max_length=max_length)
        vindex, vtokens = caption_table(val_items, vocab, max_length=max_length)
        summary.update(train_images=len(train_items), val_images=len(val_items), train_captions=len(index),
                       val_captions=len(vindex), unreadable_images=len(bad) + len(bad_val), vocabulary=len(vocab),
                       max_length=max_length)
        extras = {"vocabulary": vocab, "max_length": max_length, "images": (x_train, x_val),
                  "tables": ((index, tokens), (vindex, vtokens)), "items": (train_items, val_items)}
        return TaskData(train=per_caption(x_train, index, tokens),
                        val=per_caption(x_val, vindex, vtokens) if len(vindex) else None,
                        labels=[], summary=summary, extras=extras, num_train=len(index), num_val=len(vindex) or None)

    def build_model(self, arch, data: TaskData, opts):
        """The whole captioner; with a frozen encoder, its decoder alone over features cached here."""
        import numpy as np

        from zoo.modeldir import attach_meta
        from zoo.registry import build, get_spec
        from zoo.tasks.captioning import train

        arch = str(arch)
        if Path(arch).exists():
            raise UsageError(f"Continuing a captioning run from {arch!r} is not supported yet; train from "
                             f"'show_and_tell' or 'show_attend_tell' (the vocabulary is rebuilt from the data).")
        spec = get_spec(arch)
        if spec.task != "captioning":
            raise UsageError(f"{arch!r} is a {spec.task} model; captioning data needs 'show_and_tell' or "
                             f"'show_attend_tell' (use --backbone {arch} to put {arch} under the captioner).")
        topts: CaptioningOptions = opts.task_options
        backbone, weights = train.backbone_and_weights(opts)
        train_backbone = topts.train_backbone if topts.train_backbone is not None else weights is None
        arch_options = {"vocab_size": len(data.extras["vocabulary"]), **topts.arch_options()}
        model = build(spec.name, input_shape=opts.input_shape, backbone=backbone, backbone_weights=weights,
                      train_backbone=train_backbone, **arch_options)
        meta = {"arch": spec.name, "task": "captioning", "input_shape": list(opts.input_shape),
                "preprocessing": {"in_model": True, "resize": "squash", "interpolation": "bilinear"},
                "vocabulary": list(data.extras["vocabulary"]), "max_length": int(data.extras["max_length"]),
                "captioning": {"backbone": backbone, "backbone_weights": weights, "train_backbone": train_backbone,
                               "beam_size": topts.beam_size, "alpha": topts.alpha, **arch_options}}
        if weights:
            meta["weights"] = {"origin": f"backbone {backbone}: {weights}"}
        attach_meta(model, meta)
        data.extras["model"] = model
        cache = not train_backbone and opts.cache_features != "off" and opts.replicas == 1
        data.extras["cached"] = cache
        if not cache:
            return model
        # Frozen encoder: its features never change, so compute them once per image and train the decoder.
        from zoo.tasks.captioning.data import per_caption

        batch = max(opts.batch_size, 32)
        x_train, x_val = data.extras["images"]
        f_train = train.encode_images(model, x_train, batch_size=batch)
        f_val = (train.encode_images(model, x_val, batch_size=batch) if len(x_val)
                 else np.zeros((0, *f_train.shape[1:]), "float32"))
        data.extras["features"] = (f_train, f_val)
        (index, tokens), (vindex, vtokens) = data.extras["tables"]
        data.train = per_caption(f_train, index, tokens)
        data.val = per_caption(f_val, vindex, vtokens) if len(vindex) else None
        decoder = model.get_layer("decoder")
        attach_meta(decoder, meta)
        return decoder

    def loss(self, data: TaskData, opts):
        from zoo.tasks.captioning.train import caption_loss

        return caption_loss()

    def metrics(self, data: TaskData, opts) -> list:
        from zoo.tasks.captioning.train import token_accuracy

        return [token_accuracy()]

    def stages(self, model, data: TaskData, opts) -> list:
        """One stage: the decoder alone (on cached features, or under a frozen encoder), or everything."""
        from zoo.training.recipe import Stage

        if data.extras.get("cached") or model.name == "decoder":
            return [Stage("decoder", opts.epochs, opts.lr, freeze=None)]
        if model.get_layer("encoder").trainable_weights:
            return [Stage("train", opts.epochs, opts.lr, freeze=None)]  # batch norm included
        # Frozen encoder without a cache (multi-worker, --cache-features off): freeze up to its last layer.
        from zoo.training.freeze import flat_layers

        last = flat_layers(model.get_layer("encoder"))[-1].name
        return [Stage("decoder", opts.epochs, opts.lr, freeze={"until": last, "bn": "frozen"})]

    def metadata(self, model, data: TaskData, opts) -> dict[str, Any]:
        """vocabulary, max_length, decoding defaults, and BLEU/CIDEr of the trained model on the validation images."""
        from zoo.modeldir import get_meta
        from zoo.tasks.captioning.predict import decoding_options, score

        full = _whole(model, data)
        meta = get_meta(full)
        out = {k: meta[k] for k in ("arch", "task", "input_shape", "preprocessing", "vocabulary", "max_length",
                                    "captioning") if k in meta}
        _, val_items = data.extras["items"]
        if val_items:
            cached = bool(data.extras.get("cached"))
            sources = data.extras["features"][1] if cached else data.extras["images"][1]
            out["metrics"] = score(full, sources, [caps for _, caps in val_items], vocab=meta["vocabulary"],
                                   from_features=cached, **decoding_options(meta))
            out["metrics"]["split"] = "validation"
        return out

    def evaluate(self, model, meta: dict, data_dir, opts) -> dict[str, Any]:
        """bleu1..bleu4, cider, exact, num_images, num_captions on a captioning folder. `opts` is a small
        dict: batch_size, and the decoding options beam_size, max_length, alpha."""
        from zoo.tasks.captioning.data import load_images, read_captions
        from zoo.tasks.captioning.predict import decoding_options, score

        opts = dict(opts or {})
        if not meta.get("vocabulary"):
            raise UsageError("This captioning model has no vocabulary in its metadata; evaluate a model directory "
                             "written by `zoo finetune show_and_tell` (or show_attend_tell).")
        captions = read_captions(data_dir)
        shape = meta.get("input_shape") or list(model.inputs[0].shape[1:])
        images, kept, errors = load_images([p for p, _ in captions.items], size=tuple(shape[:2]), channels=int(shape[2]))
        result = score(model, images, [captions.items[i][1] for i in kept], vocab=meta["vocabulary"],
                       batch_size=int(opts.get("batch_size", 32)), **decoding_options(meta, opts))
        result.update(skipped=len(errors), **{k: v for k, v in captions.summary.items() if isinstance(v, int)})
        return result

    def report(self, model, meta: dict, data: TaskData, out_dir) -> None:
        """Write the whole captioner (the trainer saved the decoder it trained on cached features) and
        captions.png: validation images with their generated and reference captions."""
        from zoo.modeldir import attach_meta, write_model_dir

        full = _whole(model, data)
        if full is not model:
            attach_meta(full, meta)
            write_model_dir(full, out_dir, meta)
        _, val_items = data.extras["items"]
        if not val_items:
            return
        from zoo.tasks.captioning.draw import draw_examples
        from zoo.tasks.captioning.predict import decoding_options, generate

        n = min(8, len(val_items))
        images = data.extras["images"][1][:n]
        outs = generate(full, images, vocab=meta["vocabulary"], **decoding_options(meta))
        draw_examples(images, [o["caption"] for o in outs], [caps[0] for _, caps in val_items[:n]],
                      Path(out_dir) / "captions.png")


def _whole(model, data: TaskData | None):
    """The whole captioner: the trainer may hold only its decoder (trained on cached features)."""
    return (data.extras.get("model") if data is not None else None) or model


def _decode(items, shape) -> tuple[Any, list, dict]:
    """Images of (path, captions) items decoded once at the model's input size; unreadable ones dropped."""
    from zoo.tasks.captioning.data import load_images

    images, kept, errors = load_images([p for p, _ in items], size=shape[:2], channels=shape[2], progress=True)
    return images, [items[i] for i in kept], errors


TASK = CaptioningTask()
