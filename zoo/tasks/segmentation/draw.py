"""Pictures of segmentation: a prediction over its image (`zoo predict --save-dir`), and the
training report's per-class IoU bars and validation examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zoo.tasks.segmentation.masks import voc_palette


def overlay(image: np.ndarray, mask: np.ndarray, labels: list[str], *, alpha: float = 0.5):
    """The image tinted with the VOC colour of each pixel's class (background untinted) and a legend."""
    from PIL import Image, ImageDraw

    rgb = image if image.shape[2] == 3 else np.repeat(image, 3, axis=2)
    palette = voc_palette()
    colours = palette[np.minimum(mask, 255)].astype(np.float32)
    tint = (mask != 0)[..., None]
    out = np.where(tint, (1 - alpha) * rgb + alpha * colours, rgb).astype(np.uint8)
    pil = Image.fromarray(out)
    if max(pil.size) < 256:  # room for the legend on tiny images
        factor = -(-256 // max(pil.size))
        pil = pil.resize((pil.width * factor, pil.height * factor), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(pil)
    present = [int(i) for i in np.unique(mask) if i != 0]
    for n, index in enumerate(present[:12]):
        name = labels[index] if index < len(labels) else str(index)
        y = 4 + 14 * n
        box = draw.textbbox((18, y), name)
        draw.rectangle((2, y, box[2] + 2, box[3] + 1), fill=(0, 0, 0))
        draw.rectangle((4, y + 1, 14, y + 11), fill=tuple(int(v) for v in palette[min(index, 255)]))
        draw.text((18, y), name, fill=(255, 255, 255))
    return pil


def draw_iou(scores: dict[str, Any], path: Path) -> Path:
    """Per-class IoU bars, mIoU and pixel accuracy in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zoo.files import save_figure

    names = list(scores["per_class_iou"])
    values = [v if v is not None else 0.0 for v in scores["per_class_iou"].values()]
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * len(names) + 2), 4))
    ax.bar(range(len(names)), values, color="tab:blue")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("IoU")
    ax.set_title(f"validation: mIoU {scores['miou']:.3f}, pixel accuracy {scores['pixel_accuracy']:.3f}")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def draw_examples(images: np.ndarray, truth: np.ndarray, pred: np.ndarray, path: Path) -> Path:
    """One row per example: image | truth | prediction, masks in the VOC colours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zoo.files import save_figure

    palette = voc_palette()
    n = len(images)
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.5 * n), squeeze=False)
    for i in range(n):
        for ax, picture, title in zip(axes[i], (images[i].astype(np.uint8), palette[truth[i]], palette[pred[i]]),
                                      ("image", "truth", "prediction")):
            ax.imshow(picture.squeeze() if picture.shape[-1] == 1 else picture)
            ax.set_axis_off()
            if i == 0:
                ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path
