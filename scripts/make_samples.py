"""Write the sample images predict's README example uses: 8 Fashion-MNIST test images as PNG.

    python scripts/make_samples.py [--data /usr/share/datasets/fashion-mnist] [--out zoo/samples/fashion_mnist]

The first test image of each of 8 classes, named `<test index>_<class>.png` so the true class
is visible next to the prediction. 28x28 grayscale, exactly the dataset's pixels.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ["t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
PICK = [0, 1, 2, 3, 4, 5, 7, 9]  # 8 of the 10 classes: shirt and bag are left out to keep it small


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "zoo/samples/fashion_mnist")
    args = parser.parse_args()
    images = read_idx(args.data / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(args.data / "t10k-labels-idx1-ubyte.gz")
    args.out.mkdir(parents=True, exist_ok=True)
    for cls in PICK:
        index = int(np.flatnonzero(labels == cls)[0])
        path = args.out / f"{index:04d}_{CLASSES[cls]}.png"
        Image.fromarray(images[index], mode="L").save(path, optimize=True)
        print(path)


if __name__ == "__main__":
    main()
