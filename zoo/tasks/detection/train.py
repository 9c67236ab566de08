"""Building the detector to train: which weights, which backbone weights, the objectness prior, and
layers carried over from an earlier run's model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def initial_weights(arch: str, weights: str | None) -> tuple[str | None, str | None]:
    """(weights for zoo.build, a zoo model to copy layers from) for `--weights`: "auto" follows
    zoo.registry.default_weights, a model directory or .keras file of an earlier run is a source
    of layers (its classes and anchors may differ), anything else is a tag or path for zoo.build."""
    from zoo.training.options import chosen_weights

    if weights is not None and weights != "auto" and is_zoo_model(str(weights)):
        return None, str(weights)
    return chosen_weights(arch, weights), None


def backbone_weights(backbone: str | None, choice: str | None) -> str | None:
    """The weights of `--backbone`: none without a backbone, "auto" by zoo.registry.default_weights."""
    from zoo.training.options import chosen_weights

    return None if backbone is None else chosen_weights(backbone, choice)


def is_zoo_model(path: str) -> bool:
    p = Path(path)
    return (p.is_dir() and (p / "model.keras").is_file()) or (p.suffix == ".keras" and p.is_file())


def transfer_weights(source, target) -> dict[str, list[str]]:
    """Copy the weights of layers with the same name and shapes; returns {"loaded": [...], "skipped": [...]}."""
    report = {"loaded": [], "skipped": []}
    by_name = {layer.name: layer for layer in source.layers}
    for layer in target.layers:
        if not layer.weights:
            continue
        other = by_name.get(layer.name)
        if other is not None and [w.shape for w in other.weights] == [w.shape for w in layer.weights]:
            layer.set_weights(other.get_weights())
            report["loaded"].append(layer.name)
        else:
            report["skipped"].append(layer.name)
    return report


def preprocessing_meta(backbone: str | None) -> dict[str, Any]:
    """The metadata's preprocessing: letterbox always (as prediction resizes), darknet's [0, 1] scaling
    for the YOLO-LITE trunk, the backbone's own normalisation otherwise (it is inside the model)."""
    if backbone is None:
        from zoo.models.common import PREPROCESSING

        return {**PREPROCESSING["unit"], "in_model": True, "resize": "letterbox"}
    return {"in_model": True, "resize": "letterbox", "backbone": backbone}


def prior_objectness(model, classes: int, prior: float) -> None:
    """Start every objectness logit at log(p / (1 - p)) (p = `prior`) instead of 0: nearly all anchor
    slots are empty, and p(object) = 0.5 everywhere makes the first steps fight a huge no-object loss
    (the focal-loss / YOLOv5 bias initialisation)."""
    layer = next((l for l in model.layers if l.name == "detect_conv"), None)
    if layer is None or not 0 < prior < 1:
        return
    bias = np.array(layer.bias.numpy())
    bias[4::5 + classes] = np.log(prior / (1 - prior))
    layer.bias.assign(bias)
