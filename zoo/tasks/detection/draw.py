"""Annotated detection images: a box, label and score per detection, one colour per class."""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np


def class_colour(index: int) -> tuple[int, int, int]:
    """A stable, well-separated colour per class index (golden-ratio steps around the hue circle)."""
    hue = (index * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_detections(image: np.ndarray, detections: list[dict]):
    """A PIL image of `image` (HxWx3 uint8) with each {"label", "index", "score", "box"} drawn."""
    from PIL import Image, ImageDraw, ImageFont

    pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).convert("RGB")
    draw = ImageDraw.Draw(pil)
    h, w = image.shape[:2]
    width = max(1, round(max(h, w) / 300))
    try:
        font = ImageFont.load_default(size=max(10, round(max(h, w) / 45)))
    except TypeError:  # Pillow < 10.1 has one fixed-size default font
        font = ImageFont.load_default()
    for det in detections:
        colour = class_colour(int(det["index"]))
        x0, y0, x1, y1 = (float(v) for v in det["box"])
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=width)
        text = f"{det['label']} {det['score']:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left, bottom - top + 2
        ty = y0 - th if y0 - th >= 0 else y0  # label above the box, or inside when at the top edge
        draw.rectangle((x0, ty, x0 + tw + 4, ty + th), fill=colour)
        draw.text((x0 + 2, ty - top), text, fill=(0, 0, 0) if sum(colour) > 380 else (255, 255, 255), font=font)
    return pil


def contact_sheet(tiles: list, *, side: int = 320, columns: int = 4):
    """Thumbnails of PIL images on a white grid, `columns` wide (the training report's detections.png)."""
    from PIL import Image

    cols = min(columns, len(tiles))
    rows = -(-len(tiles) // cols)
    sheet = Image.new("RGB", (cols * side, rows * side), (255, 255, 255))
    for k, tile in enumerate(tiles):
        tile = tile.copy()
        tile.thumbnail((side, side))
        sheet.paste(tile, ((k % cols) * side, (k // cols) * side))
    return sheet


def save_annotated(image: np.ndarray, detections: list[dict], path: str | Path) -> Path:
    """Draw the detections on the image and write it atomically."""
    from zoo.files import save_image

    return save_image(draw_detections(image, detections), path)
