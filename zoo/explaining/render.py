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
    """A 2-D float map resized to (height, width): bicubic, clamped to the map's own range.

    Bicubic, not bilinear: a bilinear map of a coarse grid (Grad-CAM's is 7x7 at 224 px, 4x4 at
    128 px) is flat or peaks exactly on a grid node; the cubic surface peaks between two strong
    neighbouring cells, where the evidence is. Clamped, so it never overshoots the values it
    interpolates (the display and the peak see no ringing).
    """
    from PIL import Image

    values = np.asarray(values, dtype=np.float32)
    height, width = int(size_hw[0]), int(size_hw[1])
    if values.shape == (height, width):
        return values
    out = np.asarray(Image.fromarray(values, mode="F").resize((width, height), Image.Resampling.BICUBIC),
                     dtype=np.float32)
    return np.clip(out, float(values.min()), float(values.max()))


def _frame_offset(info: dict) -> tuple[int, int]:
    """(dy, dx): input pixel (u, v) shows pixel (u + dy, v + dx) of the resized image before
    crop / pad."""
    top, left = info.get("pad", (0, 0))
    ctop, cleft = info.get("crop", (0, 0))
    return ctop - top, cleft - left


def to_original(values: np.ndarray, info: dict, input_hw: tuple[int, int]) -> np.ndarray:
    """A map over the model input (any resolution) -> a map over the original image (H, W)."""
    values = resample(values, input_hw)
    h, w = info["orig_size"]
    sy, sx = info["scale"]
    nh, nw = max(1, round(h * sy)), max(1, round(w * sx))  # the resized image before crop / pad
    frame = np.zeros((nh, nw), np.float32)
    dy, dx = _frame_offset(info)
    ih, iw = values.shape
    y0, y1 = max(0, dy), min(nh, ih + dy)
    x0, x1 = max(0, dx), min(nw, iw + dx)
    if y1 > y0 and x1 > x0:
        frame[y0:y1, x0:x1] = values[y0 - dy:y1 - dy, x0 - dx:x1 - dx]
    return resample(frame, (h, w))


def peak(values: np.ndarray, info: dict, input_hw: tuple[int, int]) -> list[int]:
    """[x, y] in original pixels of the maximum of a map over the model input (any resolution).

    The maximum is searched on the map resampled to the input, over the pixels that show the
    image (not letterbox padding) and, for a map coarser than the input, between the centres of
    its outer cells: a border cell's evidence is at its centre, not at the image's edge. Of equal
    maxima, the one nearest their centroid is taken (a plateau's middle, not its first pixel).
    """
    native = np.asarray(values, dtype=np.float32)
    ih, iw = int(input_hw[0]), int(input_hw[1])
    up = resample(native, (ih, iw))
    h, w = info["orig_size"]
    sy, sx = info["scale"]
    dy, dx = _frame_offset(info)
    # input rows/cols that show the image: u + dy in [0, h * sy)
    rows = [max(0, -dy), min(ih, round(h * sy) - dy)]
    cols = [max(0, -dx), min(iw, round(w * sx) - dx)]
    # cell centres of a coarse map: (k + 0.5) * ih / hn - 0.5 in input pixels
    hn, wn = native.shape
    if hn < ih:
        rows = [max(rows[0], int(np.ceil(ih / hn / 2 - 0.5))), min(rows[1], int(np.floor(ih - ih / hn / 2 - 0.5)) + 1)]
    if wn < iw:
        cols = [max(cols[0], int(np.ceil(iw / wn / 2 - 0.5))), min(cols[1], int(np.floor(iw - iw / wn / 2 - 0.5)) + 1)]
    if rows[1] <= rows[0] or cols[1] <= cols[0]:
        rows, cols = [0, ih], [0, iw]
    window = up[rows[0]:rows[1], cols[0]:cols[1]]
    ys, xs = np.nonzero(window >= window.max() - 1e-6 * max(abs(float(window.max())), 1e-12))
    k = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    u, v = ys[k] + rows[0], xs[k] + cols[0]
    # input pixel centre -> original pixel (undo crop / pad, then the scale)
    y = (u + dy + 0.5) / sy - 0.5
    x = (v + dx + 0.5) / sx - 0.5
    return [int(np.clip(round(x), 0, w - 1)), int(np.clip(round(y), 0, h - 1))]


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
