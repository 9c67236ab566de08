"""zoo's head-stage recipe vs the Keras transfer-learning guide's, on the same data and base.

Keras guide (keras.io/guides/transfer_learning): image_dataset_from_directory, the frozen base
inside the graph (called with training=False), a new head, model.fit for N epochs.
zoo: zoo.finetune(..., unfreeze="none") -- decode once, base features cached, head trained on them.

    python scripts/bench_finetune.py                      # lenet5.fashion_mnist on scikit-learn digits
    python scripts/bench_finetune.py --model resnet50 --weights imagenet --data DIR --image-size 224
    python scripts/bench_finetune.py --model resnet18 --weights random --image-size 64   # offline timing
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import zoo  # noqa: E402,F401  before TensorFlow: zoo's TensorFlow settings (zoo.tf_settings) apply only then


def keras_guide(model_name: str, weights: str, data: Path, *, epochs: int, image_size: int, seed: int,
                batch_size: int) -> tuple[float, float]:
    import keras

    from zoo.training.freeze import head_layers

    shape = None if image_size is None else (image_size, image_size, zoo.info(model_name)["input_shape"][2])
    full = zoo.build(model_name, weights=weights, input_shape=shape)
    h, w, c = full.input_shape[1:]
    color = "grayscale" if c == 1 else "rgb"
    kw = dict(validation_split=0.2, seed=seed, image_size=(h, w), batch_size=batch_size, color_mode=color,
              label_mode="categorical")
    train = keras.utils.image_dataset_from_directory(data, subset="training", **kw)
    val = keras.utils.image_dataset_from_directory(data, subset="validation", **kw)
    classes = len(train.class_names)
    head = head_layers(full)
    base = keras.Model(full.inputs, head[0].input)
    base.trainable = False
    inputs = keras.Input((h, w, c))
    x = base(inputs, training=False)
    for layer in head[:-1]:  # the same hidden head layers (fresh copies), then a new classifier
        x = layer.__class__.from_config(layer.get_config())(x)
    outputs = keras.layers.Dense(classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])
    t0 = time.time()
    model.fit(train, validation_data=val, epochs=epochs, verbose=0)
    seconds = time.time() - t0
    return seconds, float(model.evaluate(val, verbose=0)[1])


def zoo_recipe(model_name: str, weights: str, data: Path, *, epochs: int, seed: int, batch_size: int,
               image_size: int | None) -> tuple[float, float]:

    out = Path(tempfile.mkdtemp(prefix="bench-zoo-"))
    t0 = time.time()
    zoo.finetune(model_name, data, out=out, weights=weights, epochs=epochs, unfreeze="none", augment="none",
                 seed=seed, batch_size=batch_size, verbose=0, overwrite=True, image_size=image_size)
    seconds = time.time() - t0
    return seconds, json.loads((out / "metadata.json").read_text())["metrics"]["accuracy"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--weights", default="fashion_mnist")
    parser.add_argument("--data", type=Path, default=None, help="class folders (default: scikit-learn digits as PNGs)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = args.data
    if data is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from helpers import write_digits

        data = write_digits(Path(tempfile.mkdtemp(prefix="bench-digits-")))
    if args.weights == "random":  # a timing-only run without downloads: random weights saved as a file

        path = Path(tempfile.mkdtemp(prefix="bench-weights-")) / f"{args.model}.weights.h5"
        zoo.build(args.model).save_weights(path)
        args.weights = str(path)
    # Both timings include everything after the data folder exists: reading, decoding, training.
    k_time, k_acc = keras_guide(args.model, args.weights, data, epochs=args.epochs, image_size=args.image_size,
                                seed=args.seed, batch_size=args.batch_size)
    z_time, z_acc = zoo_recipe(args.model, args.weights, data, epochs=args.epochs, seed=args.seed,
                               batch_size=args.batch_size, image_size=args.image_size)
    print(f"{'recipe':<28}{'seconds':>10}{'val accuracy':>15}")
    print(f"{'keras guide (fit, in-graph)':<28}{k_time:>10.1f}{k_acc:>15.4f}")
    print(f"{'zoo (cached features)':<28}{z_time:>10.1f}{z_acc:>15.4f}")
    print(f"speed-up {k_time / z_time:.1f}x, accuracy difference {z_acc - k_acc:+.4f}")


if __name__ == "__main__":
    main()
