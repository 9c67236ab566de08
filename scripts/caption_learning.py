"""Captioning learning check: Show and Tell from scratch on synthetic shapes, BLEU on held-out images.

    python scripts/caption_learning.py [--count 400] [--size 96] [--backbone tiny|resnet18] [--epochs 30]

Makes the shapes data (scripts/make_shapes_captions.py) in a temporary folder, trains the whole
captioner (encoder included, no pretrained weights) on 80% of the images, and prints BLEU-1..4,
CIDEr and the exact-match rate of greedy and beam-search captions on the other 20%, next to the
score of the best constant caption (the training caption that scores highest on the held-out set).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def run(*, count: int, size: int, backbone: str, epochs: int, batch_size: int, lr: float, seed: int,
        colours: int, shapes: int, relations: int, embed: int, units: int, dropout: float, width: int,
        beam_size: int, pooling: str = "flatten", verbose: int = 2, data_dir: Path | None = None) -> dict:
    import keras
    import numpy as np

    from make_shapes_captions import make
    from zoo.data.captioning import load_images, read_captions, split
    from zoo.models.show_and_tell import build_from_config, make_config
    from zoo.tasks.captioning_metrics import caption_metrics
    from zoo.tasks.captioning_text import build_vocabulary, tokenize
    from zoo.tasks.captioning_fit import caption_table, fit, generate

    keras.utils.set_random_seed(seed)
    tmp = tempfile.TemporaryDirectory() if data_dir is None else None
    root = Path(tmp.name) if tmp else Path(data_dir)
    make(root, count=count, size=size, seed=seed, colours=colours, shapes=shapes, relations=relations)
    items = read_captions(root).items
    train_items, val_items = split(items, val_split=0.2, seed=seed)
    vocab = build_vocabulary([c for _, caps in train_items for c in caps], min_count=1)
    max_length = max(len(tokenize(c)) for _, caps in train_items for c in caps)
    x_train, _, _ = load_images([p for p, _ in train_items], size=(size, size))
    x_val, _, _ = load_images([p for p, _ in val_items], size=(size, size))
    config = make_config(backbone=backbone, train_backbone=True, vocab_size=len(vocab), embed_dim=embed,
                         units=units, dropout=dropout, tiny_width=width, pooling=pooling)
    model = build_from_config(config, input_shape=(size, size, 3))
    index, tokens = caption_table(train_items, vocab, max_length=max_length)
    vindex, vtokens = caption_table(val_items, vocab, max_length=max_length)
    t0 = time.perf_counter()
    fit(model, x_train, index, tokens, cached=False, epochs=epochs, batch_size=batch_size, lr=lr,
        val=(x_val, vindex, vtokens), seed=seed, verbose=verbose)
    train_seconds = time.perf_counter() - t0
    refs = [[tokenize(c) for c in caps] for _, caps in val_items]
    result = {"train_seconds": round(train_seconds, 1), "train_images": len(train_items), "val_images": len(val_items),
              "vocab": len(vocab), "max_length": max_length}
    for beam in sorted({1, beam_size}):
        caps = generate(model, x_val, vocab=vocab, beam_size=beam, max_length=max_length + 2)
        metrics = caption_metrics(refs, [tokenize(c["caption"]) for c in caps])
        result[f"beam{beam}"] = {k: round(v, 4) for k, v in metrics.items()}
    # The best constant caption: every held-out image gets the same training caption.
    candidates = sorted({c for _, caps in train_items for c in caps})[:200]
    best = max(candidates, key=lambda c: caption_metrics(refs, [tokenize(c)] * len(refs))["bleu4"])
    result["constant"] = {"caption": best, **{k: round(v, 4) for k, v in caption_metrics(refs, [tokenize(best)] * len(refs)).items()}}
    result["examples"] = [(c["caption"], caps[0]) for c, (_, caps) in zip(generate(model, x_val[:3], vocab=vocab, beam_size=1,
                                                                                      max_length=max_length + 2), val_items[:3])]
    if tmp:
        tmp.cleanup()
    del np
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=400)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--backbone", default="tiny")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--colours", type=int, default=4)
    p.add_argument("--shapes", type=int, default=3)
    p.add_argument("--relations", type=int, default=4)
    p.add_argument("--embed", type=int, default=128)
    p.add_argument("--units", type=int, default=256)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--beam-size", type=int, default=3)
    p.add_argument("--pooling", default="flatten", choices=("avg", "max", "flatten"))
    args = p.parse_args(argv)
    result = run(count=args.count, size=args.size, backbone=args.backbone, epochs=args.epochs,
                 batch_size=args.batch_size, lr=args.lr, seed=args.seed, colours=args.colours, shapes=args.shapes,
                 relations=args.relations, embed=args.embed, units=args.units, dropout=args.dropout,
                 width=args.width, beam_size=args.beam_size, pooling=args.pooling)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
