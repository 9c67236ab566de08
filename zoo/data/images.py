"""The one image decoder shared by training and prediction, so both see the same pixels.

    decode_image(path_or_bytes, channels=3) -> HxWxC uint8

Rules (every reader in zoo goes through here):
- EXIF orientation is applied; the first frame of an animation (GIF, WebP, APNG, multi-page TIFF) is used.
- Every Pillow mode becomes RGB: palette and CMYK are converted; 16-bit images are scaled to
  8 bits (value / 257); transparency (alpha, or a palette / colour key) is composited over a
  WHITE background by default (how viewers show documents and product photos); pass
  `background="black"` for datasets drawn on black, e.g. MNIST-style images.
- channels=1 gives luma (ITU-R 601, Pillow's "L") of that RGB image, shape HxWx1.
- Decompression bombs: the pixel count is read from the header and refused above `max_pixels`
  before any pixel is decoded (default 178,956,970 = Pillow's own hard limit; `ZOO_MAX_PIXELS`
  overrides it, 0 means no limit). Pillow's global Image.MAX_IMAGE_PIXELS is left alone unless
  a larger limit is asked for, and then only raised to match.
- Anything unreadable raises zoo.errors.ImageError with a one-line reason.

No TensorFlow here: this runs in worker threads (Pillow releases the GIL while decoding).
"""

from __future__ import annotations

import io
import os
import struct
import threading
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np

from zoo.errors import ImageError

# Lower-case suffixes that list_images picks up in folders (Pillow decodes all of them).
IMAGE_EXTENSIONS: frozenset[str] = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".gif", ".bmp", ".dib", ".tif", ".tiff",
    ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".ico", ".mpo",
})

PILLOW_HARD_LIMIT = 178_956_970  # 2 * PIL.Image.MAX_IMAGE_PIXELS: where Pillow itself raises
DEFAULT: Any = object()  # sentinel: "use ZOO_MAX_PIXELS, else PILLOW_HARD_LIMIT"

_BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0)}
_PIL_LOCK = threading.Lock()
_PIL_READY = False


def max_pixels_limit(max_pixels: Any = DEFAULT) -> int | None:
    """The pixel limit in force: an explicit value, else ZOO_MAX_PIXELS, else Pillow's hard limit.
    None (or 0) means no limit; a negative or non-whole value is a usage error (never a silent "off")."""
    from zoo.errors import UsageError

    if max_pixels is DEFAULT:
        raw = os.environ.get("ZOO_MAX_PIXELS", "").strip()
        if not raw:
            return PILLOW_HARD_LIMIT
        try:
            max_pixels = int(raw.replace("_", ""))
        except ValueError:
            raise UsageError(f"ZOO_MAX_PIXELS must be a whole number of pixels, 0 for no limit. "
                             f"Received: {raw[:40]!r}.") from None
        what = "ZOO_MAX_PIXELS"
    else:
        what = "--max-pixels"
    if max_pixels is None:
        return None
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 0:
        raise UsageError(f"{what} must be a whole number of pixels >= 0 (0 = no limit). Received: {max_pixels!r}.")
    return int(max_pixels) or None


def _pillow(limit: int | None):
    """Pillow, with its own global bomb check (Image.MAX_IMAGE_PIXELS, raising above twice that)
    raised only when the caller allows larger images than it would; zoo never lowers it."""
    global _PIL_READY
    from PIL import Image

    with _PIL_LOCK:
        if not _PIL_READY:
            # we check the header ourselves; Pillow's warning below its hard limit only duplicates that
            warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
            _PIL_READY = True
        current = Image.MAX_IMAGE_PIXELS
        if current is not None and (limit is None or limit > 2 * current):
            Image.MAX_IMAGE_PIXELS = None if limit is None else -(-limit // 2)
    return Image


def _name(source) -> str:
    return "<bytes>" if isinstance(source, (bytes, bytearray, memoryview)) else str(source)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def decode_image(
    source: str | os.PathLike | bytes,
    *,
    channels: int = 3,
    max_pixels: int | None = DEFAULT,
    background: Literal["white", "black"] = "white",
) -> np.ndarray:
    """Decode one image file (or its bytes) to an HxWxC uint8 array.

    Args:
        source: a path, or the encoded bytes.
        channels: 3 for RGB, 1 for grayscale (HxWx1).
        max_pixels: refuse images with more pixels (read from the header, before decoding);
            default ZOO_MAX_PIXELS or 178,956,970; None means no limit.
        background: what transparent pixels are composited on, "white" or "black".
    Returns:
        np.ndarray of shape (H, W, channels), dtype uint8.
    Raises:
        ImageError: one-line reason (missing, empty, not an image, truncated, too large...).
    """
    if channels not in (1, 3):
        from zoo.errors import UsageError

        raise UsageError(f"`channels` must be 1 or 3. Received: channels={channels!r}.")
    if background not in _BACKGROUNDS:
        from zoo.errors import UsageError

        raise UsageError(f"`background` must be 'white' or 'black'. Received: background={background!r}.")
    limit = max_pixels_limit(max_pixels)
    name = _name(source)
    Image = _pillow(limit)
    from PIL import UnidentifiedImageError

    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageError(f"empty data: {name}")
        fp: Any = io.BytesIO(bytes(source))
    else:
        path = Path(source)
        if not path.exists():
            raise ImageError(f"no such file: {name}")
        if path.is_dir():
            raise ImageError(f"is a folder, not an image file: {name}")
        try:
            if path.stat().st_size == 0:
                raise ImageError(f"empty file: {name}")
        except OSError as exc:
            raise ImageError(f"cannot read {name}: {_one_line(exc.strerror or exc)}") from None
        fp = path
    try:
        with Image.open(fp) as im:
            width, height = im.size
            if limit is not None and width * height > limit:
                raise ImageError(
                    f"{width}x{height} = {width * height:,} pixels is over the limit of {limit:,} "
                    f"(possible decompression bomb; raise ZOO_MAX_PIXELS to allow it): {name}")
            im.seek(0)  # first frame of animations and multi-page files
            im.load()
            array = _to_array(im, channels=channels, background=_BACKGROUNDS[background])
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own check fired first, from the header too
        raise ImageError(f"over the limit of {limit:,} pixels, possible decompression bomb ({_one_line(exc)}); "
                         f"raise ZOO_MAX_PIXELS to allow it: {name}") from None
    except UnidentifiedImageError:
        raise ImageError(f"not an image Pillow can read (unknown format): {name}") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:
        # Pillow reports truncated / corrupt data as OSError ("image file is truncated") or
        # SyntaxError / ValueError from a format plugin.
        reason = _one_line(exc) or type(exc).__name__
        raise ImageError(f"corrupt or truncated image ({reason}): {name}") from None
    except MemoryError:
        raise ImageError(f"not enough memory to decode: {name}") from None
    return array


def _to_array(im, *, channels: int, background: tuple[int, int, int]) -> np.ndarray:
    from PIL import Image, ImageOps

    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block must not lose the picture: keep it unrotated
        pass
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        im = _high_depth_to_l(im)
        mode = "L"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode in ("P", "L", "RGB", "1") and "transparency" in im.info):
        rgba = im.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, background + (255,))
        canvas.alpha_composite(rgba)
        im = canvas.convert("RGB")
    elif mode in ("L", "1") and channels == 1:
        im = im.convert("L")
    elif mode != "RGB":
        try:
            im = im.convert("RGB")  # P, CMYK, YCbCr, HSV, 1, L...
        except ValueError as exc:
            raise ImageError(f"unsupported colour mode {mode} ({_one_line(exc)})") from None
    if channels == 1 and im.mode != "L":
        im = im.convert("L")
    array = np.asarray(im, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return np.ascontiguousarray(array)


def _high_depth_to_l(im):
    """16-bit (and 32-bit int / float) grayscale to 8 bits: value / 257 maps 0..65535 to 0..255."""
    from PIL import Image

    values = np.asarray(im)
    if im.mode == "F":
        values = values.astype(np.float64)
        finite = values[np.isfinite(values)]
        top = float(finite.max()) if finite.size else 1.0
        # float images are in [0, 1] by convention; larger ones are taken as 0..255 or 0..65535
        scale = 255.0 if top <= 1.0 else (1.0 if top <= 255.0 else 255.0 / 65535.0)
        out = np.nan_to_num(values * scale)
    else:
        out = values.astype(np.float64) / 257.0
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), mode="L")


def list_images(folder: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """Image files in `folder` (suffix in IMAGE_EXTENSIONS, any case), sorted by path.

    Hidden files (".name", e.g. macOS "._photo.jpg" resource forks) and folders are skipped.
    """
    folder = Path(folder)
    if not folder.is_dir():
        from zoo.errors import UsageError

        raise UsageError(f"{folder} is not a folder. Give a folder of images.")
    walker = folder.rglob("*") if recursive else folder.iterdir()
    found = []
    for path in walker:
        rel = path.relative_to(folder).parts
        if any(part.startswith(".") for part in rel):
            continue
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


# --- resizing for a model input (policy from metadata["preprocessing"], never hard-coded) ---

_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "area")
RESIZE_POLICIES = ("squash", "crop", "letterbox")


def resize_for_model(
    image: np.ndarray,
    size: tuple[int, int],
    *,
    resize: str = "squash",
    crop_pct: float | None = None,
    interpolation: str = "bilinear",
    pad_value: int = 114,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Resize an HxWxC uint8 image to `size` = (height, width) following a resize policy.

    squash: stretch to size. crop: scale the short side to size / crop_pct, then centre-crop
    (timm / torchvision eval). letterbox: keep the aspect ratio and pad with `pad_value`
    (YOLO). Returns the array and info to map outputs back to the original pixels:
    {"orig_size": (h, w), "scale": (sy, sx), "pad": (top, left), "crop": (top, left)}.
    """
    from PIL import Image

    if resize not in RESIZE_POLICIES:
        from zoo.errors import UsageError

        raise UsageError(f"preprocessing 'resize' must be one of {', '.join(RESIZE_POLICIES)}. "
                         f"Received: resize={resize!r}. Fix the model's metadata.json.")
    method = _pil_method(interpolation)
    th, tw = int(size[0]), int(size[1])
    h, w = image.shape[:2]
    channels = image.shape[2]
    pil = Image.fromarray(image[:, :, 0] if channels == 1 else image)
    info: dict[str, Any] = {"orig_size": (h, w), "pad": (0, 0), "crop": (0, 0)}
    if resize == "squash":
        out = pil.resize((tw, th), method) if (h, w) != (th, tw) else pil
        info["scale"] = (th / h, tw / w)
    elif resize == "crop":
        pct = float(crop_pct) if crop_pct else 1.0
        if not 0 < pct <= 1:
            from zoo.errors import UsageError

            raise UsageError(f"preprocessing 'crop_pct' must be in (0, 1]. Received: crop_pct={crop_pct!r}.")
        scale = max(th / pct / h, tw / pct / w)
        nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
        top, left = (nh - th) // 2, (nw - tw) // 2
        if nh * nw <= max(h * w, 4 * th * tw):
            resized = pil.resize((nw, nh), method) if (nh, nw) != (h, w) else pil
            out = resized.crop((left, top, left + tw, top + th))
        else:
            # An extreme aspect ratio (1 x 1,000,000 px) would make the scaled intermediate gigapixels:
            # resample only the source region the crop keeps, straight to the output size.
            sy, sx = h / nh, w / nw
            out = pil.resize((tw, th), method, box=(left * sx, top * sy, (left + tw) * sx, (top + th) * sy))
        info.update(scale=(nh / h, nw / w), crop=(top, left))
    else:
        scale = min(th / h, tw / w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        resized = pil.resize((nw, nh), method) if (nh, nw) != (h, w) else pil
        top, left = (th - nh) // 2, (tw - nw) // 2
        fill = pad_value if channels == 1 else (pad_value,) * 3
        out = Image.new(resized.mode, (tw, th), fill)
        out.paste(resized, (left, top))
        info.update(scale=(nh / h, nw / w), pad=(top, left))
    array = np.asarray(out, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return array, info


def _pil_method(interpolation: str):
    from PIL import Image

    name = (interpolation or "bilinear").lower()
    table = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
             "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
             "area": Image.Resampling.BOX}
    if name not in table:
        from zoo.errors import UsageError

        raise UsageError(f"preprocessing 'interpolation' must be one of {', '.join(_INTERPOLATIONS)}. "
                         f"Received: {interpolation!r}.")
    return table[name]
