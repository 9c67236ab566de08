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


def upsample(grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A (rows, columns) attention map stretched bilinearly over an image of size (height, width),
    as the caption model's input was stretched from it (captioners resize by squashing)."""
    from PIL import Image

    height, width = size
    heat = Image.fromarray(np.asarray(grid, np.float32))  # mode "F"
    return np.asarray(heat.resize((width, height), Image.Resampling.BILINEAR))


def attention_figure(image: np.ndarray, words: list[str], maps: np.ndarray, path: Path, *, columns: int = 5) -> Path:
    """The image once per generated word with that word's attention over it and the word as title
    (the figure of Xu et al. 2015): where the model looked for each word."""
    from matplotlib.figure import Figure

    from zoo.files import save_figure

    image = np.asarray(image, np.uint8)
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
    n = max(len(words), 1)
    columns = min(columns, n)
    rows = -(-n // columns)
    fig = Figure(figsize=(2.2 * columns, 2.4 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, word, grid in zip(axes.ravel(), words, maps):
        heat = upsample(grid, rgb.shape[:2])
        ax.imshow(rgb)
        # Scaled per word: the weights sum to 1 over the grid, so their size says nothing to the eye.
        ax.imshow(heat / max(float(heat.max()), 1e-12), cmap="jet", alpha=0.5, vmin=0.0, vmax=1.0)
        ax.set_title(word, fontsize=11)
    if not words:
        axes[0, 0].imshow(rgb)
        axes[0, 0].set_title("(empty caption)", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)
