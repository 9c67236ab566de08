"""Detection's `--opt key=value` options, parsed once by the engine (zoo.training.task.parse_options)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from zoo.errors import UsageError


@dataclass(frozen=True)
class DetectionOptions:
    anchors: int = 5  # k-means anchors computed from the training boxes (YOLOv2 uses 5)
    mosaic: float = 0.5  # probability that a training view is a mosaic of four images (needs --augment)
    backbone_weights: str | None = "auto"  # for --backbone: tag | path | None; "auto" = zoo.registry.default_weights
    batch_norm: bool | None = None  # batch norm after each 3x3 conv; None = the architecture's default
    obj_prior: float = 0.01  # initial p(object) of every anchor slot when training from scratch; 0 = off
    ignore_thresh: float = 0.6  # no-object loss skipped where a prediction already overlaps a true box this much
    lambda_coord: float = 1.0  # loss weights: box coordinates, objectness, no-object, classes
    lambda_obj: float = 1.0
    lambda_noobj: float = 1.0
    lambda_class: float = 1.0
    xy_loss: Literal["mse", "bce"] = "mse"  # centre-offset loss: darknet's squared error, or BCE
    conf: float = 0.25  # prediction thresholds stored with the model (zoo predict --conf/--iou/--max-det win)
    iou: float = 0.45
    max_det: int = 100

    def __post_init__(self) -> None:
        if isinstance(self.anchors, bool) or not isinstance(self.anchors, int) or self.anchors < 1:
            raise UsageError(f"`anchors` must be a whole number >= 1. Received: anchors={self.anchors!r}.")
        for name in ("mosaic", "ignore_thresh", "conf", "iou"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"`{name}` must be between 0 and 1. Received: {name}={value!r}.")
        if not 0.0 <= self.obj_prior < 1.0:
            raise UsageError(f"`obj_prior` must be in [0, 1) (0 = off). Received: obj_prior={self.obj_prior!r}.")
        for name in ("lambda_coord", "lambda_obj", "lambda_noobj", "lambda_class"):
            if getattr(self, name) < 0:
                raise UsageError(f"`{name}` must be >= 0. Received: {name}={getattr(self, name)!r}.")
        if self.xy_loss not in ("mse", "bce"):
            raise UsageError(f"`xy_loss` must be one of mse, bce. Received: xy_loss={self.xy_loss!r}.")
        if self.max_det < 1:
            raise UsageError(f"`max_det` must be >= 1. Received: max_det={self.max_det!r}.")
        if self.batch_norm is not None and self.batch_norm not in (True, False):  # 1 / 0 from the CLI are bools
            raise UsageError(f"`batch_norm` must be true or false. Received: batch_norm={self.batch_norm!r}.")
        if self.batch_norm is not None:
            object.__setattr__(self, "batch_norm", bool(self.batch_norm))
        if self.backbone_weights in ("none", "None", ""):
            object.__setattr__(self, "backbone_weights", None)

    def thresholds(self) -> dict[str, float | int]:
        """conf, iou and max_det: what prediction reads."""
        return {"conf": self.conf, "iou": self.iou, "max_det": self.max_det}
