"""Fuzzing the shared image decoder and the mask reader with hypothesis.

The promise: whatever bytes arrive, decode_image returns an HxWxC uint8 array or raises
zoo.errors.ImageError with a one-line reason; read_mask returns HxW uint8 or raises UsageError.
Nothing else escapes (no KeyError / ZeroDivisionError / TypeError from a Pillow plugin), and
nothing hangs. Inputs are tiny so thousands of cases run in seconds.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from zoo.data.images import decode_image
from zoo.errors import ImageError, UsageError


# Pillow warns about corrupt EXIF blocks it skips; that is the decoder coping, not a failure.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def fuzz(n: int) -> settings:
    """n cases, no deadline (shared CI cores), reproducible, no example database in the checkout."""
    scale = float(os.environ.get("ZOO_FUZZ_SCALE", "1"))  # e.g. 20 for a deep nightly run
    return settings(max_examples=max(1, int(n * scale)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def _encoded(fmt: str, mode: str = "RGB", size=(5, 4), **kw) -> bytes:
    rng = np.random.default_rng(0)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    array = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    im = Image.fromarray(array[..., 0] if channels == 1 else array, mode)
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


SEEDS = {
    "png": _encoded("PNG"),
    "png_rgba": _encoded("PNG", "RGBA"),
    "jpeg": _encoded("JPEG", quality=90),
    "jpeg_progressive": _encoded("JPEG", progressive=True),
    "gif": _encoded("GIF", "L"),
    "bmp": _encoded("BMP"),
    "tiff": _encoded("TIFF"),
    "webp": _encoded("WEBP", lossless=True),
    "ico": _encoded("ICO", size=(16, 16)),
    "ppm": _encoded("PPM"),
}


def _check_decode(data: bytes, channels: int = 3) -> None:
    try:
        out = decode_image(data, channels=channels, max_pixels=1 << 16)
    except ImageError as exc:
        text = str(exc)
        assert text and "\n" not in text, repr(text)
        return
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == channels
    assert out.shape[0] * out.shape[1] <= 1 << 16


@st.composite
def mutated(draw, seeds=SEEDS):
    """A valid small file with a few bytes overwritten, a cut, or bytes inserted."""
    data = bytearray(seeds[draw(st.sampled_from(sorted(seeds)))])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["set", "truncate", "insert", "zero_run"]))
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if kind == "set":
            data[pos] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            data[pos:pos + 4] = b"\x00\x00\x00\x00"
    return bytes(data)


@fuzz(1500)
@given(st.binary(max_size=256))
def test_random_bytes_decode_or_image_error(data):
    if not data:
        with pytest.raises(ImageError):
            decode_image(data)
        return
    _check_decode(data)


@fuzz(1000)
@given(mutated(), st.sampled_from([1, 3]))
def test_mutated_headers_decode_or_image_error(data, channels):
    _check_decode(data, channels)


@fuzz(300)
@given(st.sampled_from(sorted(SEEDS)), st.binary(min_size=1, max_size=64))
def test_valid_magic_with_garbage_body(fmt, tail):
    """The first 16 bytes of a real file (magic + start of header), then garbage."""
    _check_decode(SEEDS[fmt][:16] + tail)


def test_header_claiming_huge_size_is_refused_before_decoding():
    """A PNG header saying 100000 x 100000: refused from the header, no 30 GB allocation."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    with pytest.raises(ImageError, match="over the limit"):
        decode_image(data)


def test_decoder_on_files_as_well_as_bytes(tmp_path):
    """The path branch: a mutated file on disk behaves like its bytes."""
    rng = np.random.default_rng(3)
    for i in range(40):
        data = bytearray(SEEDS["png"])
        data[rng.integers(8, len(data))] ^= 0xFF
        path = tmp_path / f"f{i}.png"
        path.write_bytes(bytes(data))
        try:
            decode_image(path)
        except ImageError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc)


MASK_SEEDS = {
    "palette": None,
    "gray": None,
    "rgb_voc": None,
    "i16": None,
}


def _mask_bytes(kind: str) -> bytes:
    mask = np.array([[0, 1, 255], [2, 0, 1]], np.uint8)
    if kind == "palette":
        im = Image.fromarray(mask, "P")
        im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)
    elif kind == "gray":
        im = Image.fromarray(mask, "L")
    elif kind == "rgb_voc":
        im = Image.fromarray(np.stack([mask * 0, mask * 0, mask * 0], -1).astype(np.uint8), "RGB")
    else:
        im = Image.fromarray(mask.astype(np.uint16) * 300)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


MASK_SEEDS = {k: _mask_bytes(k) for k in MASK_SEEDS}


@fuzz(300)
@given(st.one_of(mutated(MASK_SEEDS), st.binary(max_size=128)))
def test_mask_reader_returns_indices_or_usage_error(tmp_path_factory, data):
    from zoo.tasks.segmentation.masks import read_mask

    path = tmp_path_factory.getbasetemp() / "fuzz_mask.png"
    path.write_bytes(data)
    try:
        mask = read_mask(path)
    except UsageError as exc:
        assert "\n" not in str(exc)
        return
    assert mask.dtype == np.uint8 and mask.ndim == 2
