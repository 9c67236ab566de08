"""Helpers shared by several test files (tests/ is on sys.path): tiny class-folder datasets and
CLI runs, a corpus of awkward image files, a tiny classifier with zoo metadata."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np

# The start of a script for `python -I` that must run without zoo: zoo is installed in CI's
# environment, so the script blocks it (None in sys.modules makes every `import zoo...` raise
# ModuleNotFoundError, Keras's own imports included) and checks that it is blocked.
BLOCK_ZOO = """
import sys
sys.modules["zoo"] = None
try:
    import zoo
except ModuleNotFoundError:
    pass
else:
    sys.exit("zoo is still importable: " + str(zoo))
"""

# --- fine-tuning: datasets, CLI runs, history ---


def write_digits(root: Path, *, per_class: int | None = None, classes=range(10), offset: int = 0,
                 limit: int | None = None) -> Path:
    """scikit-learn's 8x8 digits (those with index in [offset, limit)), upscaled to 32x32 grayscale
    PNGs in one folder per class."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    counts: dict[int, int] = {}
    for i, (img, y) in enumerate(zip(d.images, d.target)):
        if int(y) not in classes or i < offset or (limit is not None and i >= limit):
            continue
        if per_class is not None and counts.get(int(y), 0) >= per_class:
            continue
        counts[int(y)] = counts.get(int(y), 0) + 1
        folder = root / str(y)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (img * 255 / 16).clip(0, 255).astype(np.uint8)
        Image.fromarray(pixels).resize((32, 32), Image.BILINEAR).save(folder / f"{i}.png")
    return root


def zoo_cli(*args: str, env: dict | None = None, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", **(env or {})}
    return subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, **kwargs)


def zoo_popen(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "zoo", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=full_env, **kwargs)


def history_epochs(out: Path) -> list[int]:
    import csv

    with open(out / "history.csv", newline="") as fh:
        return [int(row["epoch"]) for row in csv.DictReader(fh)]


# --- images: a corpus of awkward files ---

RED, BLUE = (255, 0, 0), (0, 0, 255)


def bomb_png(path: Path, side: int = 32_768) -> None:
    """A valid 1-bit PNG of side x side (> 1 gigapixel) that is ~100 KB on disk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + side // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    rows_per_feed = 1024
    parts = [comp.compress(row * rows_per_feed) for _ in range(side // rows_per_feed)]
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))


def halves(size=(40, 20)):
    """Left half red, right half blue (width, height = size), a PIL image."""
    from PIL import Image

    im = Image.new("RGB", size, RED)
    im.paste(BLUE, (size[0] // 2, 0, size[0], size[1]))
    return im


def make_corpus(folder: Path) -> list[tuple[Path, bool]]:
    """One file per awkward case (alpha, palette, 16-bit, CMYK, EXIF rotation, animation, empty,
    text, truncated, decompression bomb, a folder, a missing path), in a fixed order: (path, decodes)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    out: list[tuple[Path, bool]] = []

    def add(name, ok):
        out.append((folder / name, ok))
        return folder / name

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:4, :, 3] = 255  # top half opaque red-ish, bottom half fully transparent
    Image.fromarray(rgba, "RGBA").save(add("rgba.png", True))
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    pal.paste(1, (0, 0, 8, 4))
    pal.save(add("palette.png", True), transparency=0)
    g16 = np.full((6, 6), 65535, np.uint16)
    g16[3:] = 128 * 257
    Image.fromarray(g16).save(add("gray16.png", True))
    Image.new("CMYK", (8, 8), (255, 0, 0, 0)).save(add("cmyk.jpg", True), quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    halves().save(add("exif_rotated.jpg", True), exif=exif, quality=95)
    frames = [Image.new("RGB", (8, 8), RED), Image.new("RGB", (8, 8), BLUE)]
    frames[0].save(add("animated.gif", True), save_all=True, append_images=frames[1:], duration=50, loop=0)
    halves((16, 16)).save(add("image.webp", True), lossless=True)
    halves((16, 16)).save(add("image.bmp", True))
    halves((16, 16)).save(add("image.tiff", True))
    Image.new("RGB", (1, 1), BLUE).save(add("one_pixel.png", True))
    halves((16, 16)).save(add("UPPER.JPG", True))
    add("empty.jpg", False).write_bytes(b"")
    add("text.jpg", False).write_text("this is not a picture\n")
    add("random.png", False).write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    add("truncated.jpg", False).write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    bomb_png(add("gigapixel.png", False))
    add("x.jpg", False).mkdir()
    add("missing.jpg", False)
    return out


# --- a tiny classifier with zoo metadata, and images for it ---

LABELS = ["cat", "dog", "bird"]


def tiny_model(channels=3, size=16, *, rescale=True, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, channels))
    x = keras.layers.Rescaling(1 / 255)(inputs) if rescale else inputs
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def with_meta(model, **prep):
    """`model` with classification metadata (LABELS, its input shape, `prep` as preprocessing)."""
    from zoo.modeldir import attach_meta

    shape = list(model.input_shape[1:])
    attach_meta(model, {"arch": "tiny", "task": "classification", "labels": LABELS, "input_shape": shape,
                        "preprocessing": prep})
    return model


def write_images(folder: Path, n: int, size=(24, 20)) -> list[Path]:
    """n random-pixel JPEGs img000.jpg... of `size` (width, height)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"img{i:03d}.jpg"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, quality=95)
        paths.append(path)
    return paths


# --- HTTP: a folder served on the loopback interface ---


@contextlib.contextmanager
def serve(folder=None, *, handler=None):
    """`folder` (or a request `handler` class) served over HTTP on 127.0.0.1 (no other network in
    tests); yields the base URL."""
    import functools
    import http.server
    import threading

    if handler is None:
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- detection ---
ROOT = Path(__file__).resolve().parents[1]


def script_module(name: str):
    """scripts/<name>.py (the seeded synthetic data generators) loaded as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shapes_module():
    """scripts/make_shapes_detection.py, the seeded synthetic VOC generator."""
    return script_module("make_shapes_detection")


def raw_from_targets(targets: np.ndarray, anchors: np.ndarray, num_classes: int, confidence: float = 20.0):
    """The raw head output whose decoding is exactly `targets` (inverse of the YOLOv2 parametrisation)."""
    grid = targets.shape[0]
    a = len(anchors)
    raw = np.zeros((grid, grid, a, 5 + num_classes), dtype=np.float64)
    raw[..., 4] = -confidence
    for row, col, k in zip(*np.nonzero(targets[..., 4])):
        cx, cy, w, h, _, cls = targets[row, col, k]
        off = np.array([cx * grid - col, cy * grid - row])
        raw[row, col, k, 0:2] = np.log(off / (1 - off))
        raw[row, col, k, 2:4] = np.log(np.array([w, h]) / anchors[k])
        raw[row, col, k, 4] = confidence
        raw[row, col, k, 5 + int(cls)] = confidence
    return raw.reshape(grid, grid, a * (5 + num_classes)).astype(np.float32)


COLOURS = {"red": (220, 30, 30), "green": (30, 220, 30), "blue": (30, 30, 220)}  # apart in grayscale too


def write_colours(root: Path, *, per_class: int = 40, size: int = 64, seed: int = 0) -> Path:
    """Three trivially separable colour classes: each image one colour (jittered per image) plus pixel
    noise, `size` px RGB PNGs in one folder per class. Another seed gives fresh images."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name, rgb in COLOURS.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            base = np.asarray(rgb, np.float32) + rng.uniform(-15, 15, 3)
            pixels = base + rng.normal(0, 20, (size, size, 3))
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{seed}_{i}.png")
    return root


# --- captioning ---
TINY_CAPTIONER = dict(backbone="tiny", vocab_size=20, embed_dim=16, units=16, tiny_width=4, dropout=0.3)


def tiny_captioner(name: str = "show_and_tell", **kw):
    """A seeded captioner on the tiny encoder at 32 px (`kw` overrides the small sizes)."""
    import keras

    import zoo

    keras.utils.set_random_seed(0)
    return zoo.build(name, input_shape=(32, 32, 3), **{**TINY_CAPTIONER, **kw})


def caption_inputs(n=3, steps=6, seed=0):
    """(images, tokens) for a captioner: random 32 px images and token rows starting with <start>."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (n, 32, 32, 3)).astype("float32")
    tokens = rng.integers(4, 20, (n, steps)).astype("int32")
    tokens[:, 0] = 2  # <start>
    return images, tokens
