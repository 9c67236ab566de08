"""Maps back onto the original image: resampling, the peak, the overlay PNG and the raw array.

A map is computed on the model input (after zoo.predict's resize policy: squash, centre crop or
letterbox), so it is first undone: the map is placed into the frame of the resized image (crop:
zeros where the crop cut the image off; letterbox: the padding dropped) and that frame is
resampled to the original size. Peaks and heatmaps are then in the original image's pixels.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


def resample(values: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """A 2-D float map resized bilinearly to (height, width)."""
    from PIL import Image

    values = np.asarray(values, dtype=np.float32)
    height, width = int(size_hw[0]), int(size_hw[1])
    if values.shape == (height, width):
        return values
    return np.asarray(Image.fromarray(values, mode="F").resize((width, height), Image.Resampling.BILINEAR),
                      dtype=np.float32)


def to_original(values: np.ndarray, info: dict, input_hw: tuple[int, int]) -> np.ndarray:
    """A map over the model input (any resolution) -> a map over the original image (H, W)."""
    values = resample(values, input_hw)
    h, w = info["orig_size"]
    sy, sx = info["scale"]
    top, left = info.get("pad", (0, 0))
    ctop, cleft = info.get("crop", (0, 0))
    nh, nw = max(1, round(h * sy)), max(1, round(w * sx))  # the resized image before crop / pad
    frame = np.zeros((nh, nw), np.float32)
    # input pixel (u, v) shows frame pixel (u - pad + crop, v - pad + crop)
    dy, dx = ctop - top, cleft - left
    ih, iw = values.shape
    y0, y1 = max(0, dy), min(nh, ih + dy)
    x0, x1 = max(0, dx), min(nw, iw + dx)
    if y1 > y0 and x1 > x0:
        frame[y0:y1, x0:x1] = values[y0 - dy:y1 - dy, x0 - dx:x1 - dx]
    return resample(frame, (h, w))


def peak(values: np.ndarray) -> list[int]:
    """[x, y] of the map's maximum (the first one in reading order on ties)."""
    y, x = np.unravel_index(int(np.argmax(values)), values.shape)
    return [int(x), int(y)]


def unit_range(values: np.ndarray, *, method: str) -> np.ndarray:
    """A map scaled to [0, 1] for display: CAM maps by their maximum; gradient maps by their 99.5th
    percentile, clipped (a few extreme pixels would otherwise leave the rest black)."""
    values = np.asarray(values, dtype=np.float32)
    top = float(values.max()) if method.startswith("gradcam") else float(np.percentile(values, 99.5))
    if not np.isfinite(top) or top <= 0:
        return np.zeros_like(values)
    return np.clip(values / top, 0.0, 1.0)


def colormap(values: np.ndarray) -> np.ndarray:
    """Jet colours (blue = 0 .. red = 1) as uint8 RGB, without matplotlib."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    rgb = np.clip(1.5 - np.abs(4.0 * v - np.array([3.0, 2.0, 1.0])), 0.0, 1.0)
    return (rgb * 255.0 + 0.5).astype(np.uint8)


def overlay(image: np.ndarray, values01: np.ndarray, point: list[int] | None = None, *, alpha: float = 0.45):
    """The image with the coloured map blended over it and a cross at `point`, as a PIL image."""
    from PIL import Image, ImageDraw

    base = np.asarray(image, dtype=np.float32)
    if base.ndim == 2:
        base = base[:, :, None]
    if base.shape[2] == 1:
        base = np.repeat(base, 3, axis=2)
    blended = (1.0 - alpha) * base + alpha * colormap(values01).astype(np.float32)
    pil = Image.fromarray(np.clip(blended + 0.5, 0, 255).astype(np.uint8))
    if point is not None:
        draw = ImageDraw.Draw(pil)
        x, y = point
        arm = max(3, min(pil.size) // 40)
        for colour, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):
            draw.line((x - arm, y, x + arm, y), fill=colour, width=width)
            draw.line((x, y - arm, x, y + arm), fill=colour, width=width)
    return pil


def file_tag(method: str) -> str:
    """A file-name-safe tag of a method ("gradcam++" -> "gradcam_pp")."""
    return method.replace("++", "_pp").replace("-", "_")


def save_heatmap(save_dir: str | os.PathLike, source: Any, image: np.ndarray, values: np.ndarray, point: list[int],
                 *, method: str) -> Path:
    from zoo.data.sources import artefact_path
    from zoo.files import save_image

    path = artefact_path(Path(save_dir), source, suffix=f".{file_tag(method)}.png")
    save_image(overlay(image, unit_range(values, method=method), point), path)
    return path


def save_raw(save_dir: str | os.PathLike, source: Any, values: np.ndarray, *, method: str) -> Path:
    from zoo.data.sources import artefact_path
    from zoo.files import atomic_write

    path = artefact_path(Path(save_dir), source, suffix=f".{file_tag(method)}.npy")
    atomic_write(path, lambda fh: np.save(fh, np.asarray(values, dtype=np.float32), allow_pickle=False))
    return path
