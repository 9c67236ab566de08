"""Drawing captions: an image with its caption in a white band under it (predict --save-dir), and
a grid of validation examples after training (captions.png). Pillow only."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np


def captioned(image: np.ndarray, caption: str, *, extra: str | None = None, min_width: int = 256):
    """A PIL image: `image` (upscaled to at least min_width) above its caption, wrapped to the width."""
    from PIL import Image, ImageDraw

    pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).convert("RGB")
    if pil.width < min_width:
        factor = -(-min_width // pil.width)
        pil = pil.resize((pil.width * factor, pil.height * factor), Image.Resampling.NEAREST)
    chars = max(16, pil.width // 7)
    lines = textwrap.wrap(caption or "(empty caption)", chars) or [""]
    if extra:
        lines += textwrap.wrap(extra, chars)
    line_height = 14
    canvas = Image.new("RGB", (pil.width, pil.height + 8 + line_height * len(lines)), (255, 255, 255))
    canvas.paste(pil, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for n, line in enumerate(lines):
        colour = (0, 0, 0) if n < len(lines) - (len(textwrap.wrap(extra, chars)) if extra else 0) else (90, 90, 90)
        draw.text((4, pil.height + 4 + line_height * n), line, fill=colour)
    return canvas


def draw_examples(images: np.ndarray, generated: list[str], references: list[str], path: Path, *, columns: int = 4) -> Path:
    """A grid of images, each with its generated caption and (grey) one reference."""
    from PIL import Image

    tiles = [captioned(np.asarray(img, np.uint8), gen, extra=f"ref: {ref}", min_width=192)
             for img, gen, ref in zip(images, generated, references)]
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    width = max(t.width for t in tiles)
    height = max(t.height for t in tiles)
    sheet = Image.new("RGB", (columns * width, rows * height), (255, 255, 255))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * width, (i // columns) * height))
    from zoo.files import save_image

    return save_image(sheet, path)
