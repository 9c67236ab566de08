"""Mask PNGs: class indices per pixel, 255 = ignore (VOC's object borders).

Read: palette ("P": the palette index is the class), plain indices ("L", "I;16"), or RGB through
the VOC colour map. Written: palette PNGs with the VOC colours, so a mask opens as a picture and
still holds the class indices.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from zoo.errors import UsageError

IGNORE_INDEX = 255
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")


def voc_palette() -> np.ndarray:
    """The Pascal VOC colour map (256 x 3 uint8): index i's colour from the bits of i."""
    palette = np.zeros((256, 3), np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette[i] = (r, g, b)
    return palette



def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A mask PNG as HxW uint8 class indices (palette index, gray value, or VOC colour for RGB)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode == "P":
                return np.asarray(im, np.uint8).copy()
            if mode in ("L", "1"):
                return np.asarray(im.convert("L"), np.uint8).copy()
            if mode in ("I", "I;16", "I;16B", "I;16L"):
                values = np.asarray(im, np.int64)
                if values.size and (values.min() < 0 or values.max() > 255):
                    raise UsageError(f"Mask {path} holds values up to {values.max()}; masks need class indices "
                                     f"0..254 and 255 for ignore. Re-save it as an 8-bit PNG.")
                return values.astype(np.uint8)
            rgb = np.asarray(im.convert("RGB"), np.uint8)
    except UsageError:
        raise
    except FileNotFoundError:
        raise UsageError(f"Mask {path} does not exist.") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UsageError(f"Mask {path} cannot be read as an image ({' '.join(str(exc).split())}). "
                         f"Re-save it as a PNG of class indices.") from None
    return _rgb_to_index(rgb, path)


def _rgb_to_index(rgb: np.ndarray, path: Path) -> np.ndarray:
    palette = voc_palette().astype(np.int64)
    codes = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    lookup = {int(c): i for i, c in enumerate(codes) if i < 256}
    pix = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    uniq, inverse = np.unique(pix, return_inverse=True)
    unknown = [int(u) for u in uniq if int(u) not in lookup]
    if unknown:
        u = unknown[0]
        raise UsageError(f"Mask {path} is an RGB image with colour {(u >> 16, (u >> 8) & 255, u & 255)}, which is not "
                         f"in the VOC colour map. Save masks as palette or gray PNGs of class indices.")
    return np.asarray([lookup[int(u)] for u in uniq], np.uint8)[inverse].reshape(rgb.shape[:2])


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """Write HxW class indices as a palette PNG with the VOC colours, atomically."""
    from PIL import Image

    from zoo.files import save_image

    mask = np.asarray(mask)
    if mask.size and mask.max() > 255:
        image = Image.fromarray(mask.astype(np.uint16))  # more classes than a palette holds
    else:
        image = Image.fromarray(mask.astype(np.uint8), mode="P")
        image.putpalette(voc_palette().reshape(-1).tolist())
    return save_image(image, path)


