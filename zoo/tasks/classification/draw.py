"""Classification pictures: an input with its top predictions, and the confusion matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def draw_predictions(image: np.ndarray, lines: list[str]):
    """The HxWxC uint8 input as an RGB PIL image with `lines` written in the top-left corner
    (the first line highlighted)."""
    from PIL import Image, ImageDraw

    pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).convert("RGB")
    if max(pil.size) < 256:  # tiny inputs (28x28 digits) would leave no room for text
        factor = -(-256 // max(pil.size))
        pil = pil.resize((pil.width * factor, pil.height * factor), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(pil)
    for n, line in enumerate(lines):
        xy = (4, 4 + 12 * n)
        box = draw.textbbox(xy, line)
        draw.rectangle(box, fill=(0, 0, 0))
        draw.text(xy, line, fill=(255, 255, 255) if n else (255, 220, 0))
    return pil


def draw_confusion(cm: np.ndarray, labels: list[str], path: Path) -> Path:
    """A row-normalised confusion matrix (rows = truth) as PNG; counts written when k <= 30."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zoo.files import save_figure

    k = len(labels)
    size = min(14, 3 + 0.45 * k)
    fig, ax = plt.subplots(figsize=(size, size))
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if k <= 30:
        ax.set_xticks(range(k), labels, rotation=90)
        ax.set_yticks(range(k), labels)
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    # Two short lines: one long line is cut off on the narrow figure of a few classes.
    ax.set_title(f"confusion matrix\n{int(cm.sum())} images, accuracy {np.trace(cm) / max(cm.sum(), 1):.3f}",
                 fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path
