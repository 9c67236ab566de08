"""`--opt key=value` of segmentation (`zoo finetune fcn8s DATA --opt skip_bad=1 --opt class_weights=median`)."""

from __future__ import annotations

from dataclasses import dataclass

from zoo.errors import UsageError

_NO_WEIGHTS = ("", "none", "auto", "0", "false", "off")
_MEDIAN = ("median", "median_frequency", "balanced")


@dataclass(frozen=True)
class SegmentationOptions:
    # Skip (and count) image/mask pairs with a missing mask, a size mismatch or values that are
    # neither a class nor 255, instead of stopping at the first with an error naming the file.
    skip_bad: bool = False
    # "none" (as torchvision's references), "median" (Eigen & Fergus median-frequency balancing)
    # or one weight per class, "1,2,0.5". The trainer's --class-weights does not apply to pixels.
    class_weights: str | tuple[float, ...] = "none"
    # FCN head (zoo.models.fcn.FCNOptions); None keeps the architecture's own default.
    head_channels: int | None = None  # width of fc6/fc7
    head_kernel: int | None = None  # fc6 kernel size
    dropout: float | None = None  # after fc6 and fc7
    learn_final_upsampling: bool | None = None  # train the last upsampling instead of fixed bilinear
    # Tag or path of the backbone's weights; None: --weights when it names a backbone tag, else
    # the backbone's default weights (when the FCN itself has none).
    backbone_weights: str | None = None

    def __post_init__(self) -> None:
        if self.skip_bad not in (True, False):
            raise UsageError(f"`skip_bad` must be true or false. Received: skip_bad={self.skip_bad!r}.")
        object.__setattr__(self, "skip_bad", bool(self.skip_bad))
        object.__setattr__(self, "class_weights", _class_weights(self.class_weights))
        for name in ("head_channels", "head_kernel"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UsageError(f"`{name}` must be a positive integer. Received: {name}={value!r}.")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise UsageError(f"`dropout` must be in [0, 1). Received: dropout={self.dropout!r}.")


def _class_weights(value) -> str | tuple[float, ...]:
    """"none", "median", or a tuple of non-negative floats (their count is checked against the data's classes)."""
    given = value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _NO_WEIGHTS:
            return "none"
        if text in _MEDIAN:
            return "median"
        value = text.split(",")
    try:
        weights = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise UsageError(f"`class_weights` must be 'none', 'median' or one number per class separated by commas. "
                         f"Received: class_weights={given!r}.") from None
    if not weights or any(w < 0 for w in weights):
        raise UsageError(f"`class_weights` needs non-negative numbers, one per class. Received: class_weights={given!r}.")
    return weights
