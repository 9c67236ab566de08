"""Box-aware augmentation in numpy: horizontal flip, scale/translate jitter inside the letterbox,
colour jitter, and mosaic. Without augmentation `letterbox` is zoo.data.images.resize_for_model's
letterbox, the very resize prediction uses, so training and prediction see the same pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def letterbox(image: np.ndarray, boxes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Letterbox to size x size exactly as prediction does; boxes follow. Returns (image, boxes, info)."""
    from zoo.data.images import resize_for_model

    out, info = resize_for_model(image, (size, size), resize="letterbox")
    (sy, sx), (top, left) = info["scale"], info["pad"]
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * np.array([sx, sy, sx, sy], np.float32)
    return out, boxes + np.array([left, top, left, top], np.float32), info


def hflip(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror left-right; x_min' = W - x_max, x_max' = W - x_min."""
    w = image.shape[1]
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
    return image[:, ::-1], boxes


def jitter_letterbox(image: np.ndarray, boxes: np.ndarray, size: int, rng: np.random.Generator, *,
                     scale: float = 0.25, translate: float = 0.1, min_visible: float = 0.35,
                     pad_value: int = 114) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Letterbox with a random scale (1 +- `scale`) and shift (+- `translate` of the side).

    Returns (image, boxes clipped to the canvas, indices of the boxes kept): a box keeps its
    object when at least `min_visible` of its area stays on the canvas.
    """
    from PIL import Image

    h, w = image.shape[:2]
    r = min(size / h, size / w) * rng.uniform(1 - scale, 1 + scale)
    nw, nh = max(1, round(w * r)), max(1, round(h * r))
    left = round((size - nw) / 2 + rng.uniform(-translate, translate) * size)
    top = round((size - nh) / 2 + rng.uniform(-translate, translate) * size)
    canvas = Image.new("RGB", (size, size), (pad_value,) * 3)
    canvas.paste(Image.fromarray(image).resize((nw, nh), Image.Resampling.BILINEAR), (left, top))
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * np.array([nw / w, nh / h, nw / w, nh / h], np.float32)
    boxes += np.array([left, top, left, top], np.float32)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    clipped = boxes.clip(0, size)
    visible = np.prod(np.clip(clipped[:, 2:] - clipped[:, :2], 0, None), axis=1)
    keep = np.flatnonzero((visible >= min_visible * np.maximum(area, 1e-9)) & (visible > 1.0))
    return np.asarray(canvas, dtype=np.uint8), clipped[keep], keep


def colour_jitter(image: np.ndarray, rng: np.random.Generator, *, strength: float = 0.3, hue: float = 0.0) -> np.ndarray:
    """Random brightness, contrast and saturation, each in 1 +- strength, and a hue turn of up to
    +- `hue` of the colour circle (a rotation of the YIQ chroma plane)."""
    x = image.astype(np.float32)
    if hue > 0:
        angle = rng.uniform(-hue, hue) * 2 * np.pi
        c, s = np.cos(angle), np.sin(angle)
        to_yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)
        turn = np.array([[1, 0, 0], [0, c, -s], [0, s, c]], np.float32)
        x = x @ (np.linalg.inv(to_yiq) @ turn @ to_yiq).T.astype(np.float32)
    gray = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = gray[..., None] + (x - gray[..., None]) * rng.uniform(1 - strength, 1 + strength)  # saturation
    x = x.mean() + (x - x.mean()) * rng.uniform(1 - strength, 1 + strength)  # contrast
    x = x * rng.uniform(1 - strength, 1 + strength)  # brightness
    return np.clip(x, 0, 255).astype(np.uint8)


# level -> (scale jitter, shift, colour strength, hue turn)
LEVELS = {"light": (0.25, 0.1, 0.2, 0.015), "strong": (0.4, 0.2, 0.4, 0.5)}


def _view(image, boxes, classes, size, rng, level):
    scale, shift, _, _ = LEVELS[level]
    if rng.random() < 0.5:
        image, boxes = hflip(image, boxes)
    out, boxes, keep = jitter_letterbox(image, boxes, size, rng, scale=scale, translate=shift)
    return out, boxes, np.asarray(classes)[keep]


def augment(image: np.ndarray, boxes: np.ndarray, classes: np.ndarray, size: int, rng: np.random.Generator, *,
            level: str = "light", others: list | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training view of one sample: (image size x size x 3 uint8, boxes in its pixels, classes).

    level "none": the plain letterbox of prediction; "light": flip + jitter (+-25% scale, +-10%
    shift) + colour 0.2 with a small hue turn; "strong": +-40% scale, +-20% shift, colour 0.4, any
    hue. With `others` (three more (image, boxes, classes)), a mosaic of the four (YOLOv4).
    """
    if level == "none":
        out, boxes, _ = letterbox(image, boxes, size)
        return out, boxes, np.asarray(classes)
    if others:
        out, boxes, classes = mosaic([(image, boxes, classes), *others[:3]], size, rng, level=level)
    else:
        out, boxes, classes = _view(image, boxes, classes, size, rng, level)
    _, _, strength, hue = LEVELS[level]
    return colour_jitter(out, rng, strength=strength, hue=hue), boxes, classes


def mosaic(items: list, size: int, rng: np.random.Generator, *, level: str = "light",
           min_visible: float = 0.35) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four jittered views tiled 2 x 2 on a (2 size)^2 canvas, then a size x size window around a random
    centre: objects keep their scale but meet new neighbours, positions and partial views."""
    canvas = np.full((2 * size, 2 * size, 3), 114, np.uint8)
    all_boxes, all_classes = [], []
    for k, (image, boxes, classes) in enumerate(items[:4]):
        view, vboxes, vclasses = _view(image, boxes, classes, size, rng, level)
        oy, ox = (k // 2) * size, (k % 2) * size
        canvas[oy:oy + size, ox:ox + size] = view
        all_boxes.append(vboxes.reshape(-1, 4) + np.array([ox, oy, ox, oy], np.float32))
        all_classes.append(np.asarray(vclasses).reshape(-1))
    x0, y0 = (int(v) for v in rng.integers(0, size + 1, 2))  # window centre in [size/2, 3 size/2]
    out = canvas[y0:y0 + size, x0:x0 + size]
    boxes = np.concatenate(all_boxes) - np.array([x0, y0, x0, y0], np.float32)
    classes = np.concatenate(all_classes)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    clipped = boxes.clip(0, size)
    visible = np.prod(np.clip(clipped[:, 2:] - clipped[:, :2], 0, None), axis=1)
    keep = (visible >= min_visible * np.maximum(area, 1e-9)) & (visible > 1.0)
    return np.ascontiguousarray(out), clipped[keep], classes[keep]
