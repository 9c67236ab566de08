"""Load a WeightsSource into a zoo model by layer name, and report what happened.

Rules (what keras.applications, timm and torchvision users expect):
- every layer with weights gets them from the file, matched by name, shapes checked;
- a classifier (Dense) whose shape differs from the file (other `num_classes`, other input size
  before a flatten) is skipped and stays freshly initialised: the backbone is still loaded;
- a first convolution with 1 or 4 input channels is adapted from the file's RGB kernel (timm's
  `adapt_input_conv`: summed for 1 channel, repeated and rescaled for others);
- any other mismatch, or a backbone layer the file does not have, is an error that names the
  layer and both shapes: silently random weights are worse than no weights.
The report (loaded / skipped / adapted / missing / unused) is returned, logged, and attached to
the model as `model._zoo_load_report`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from zoo.errors import WeightsError, ZooError

log = logging.getLogger("zoo.pretrained")


@dataclass
class LoadReport:
    origin: str
    loaded: list[str] = field(default_factory=list)  # layers whose every tensor came from the file
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (layer, why) left initialised
    adapted: list[tuple[str, str]] = field(default_factory=list)  # (layer, how) converted to fit
    missing: list[str] = field(default_factory=list)  # head layers with weights the file lacks
    unused: list[str] = field(default_factory=list)  # file entries no layer of the model takes

    @property
    def ok(self) -> bool:
        return not (self.skipped or self.missing)

    def summary(self) -> str:
        parts = [f"{len(self.loaded)} layers loaded"]
        if self.adapted:
            parts.append("adapted: " + ", ".join(f"{n} ({how})" for n, how in self.adapted))
        if self.skipped:
            parts.append("skipped (new, trainable): " + ", ".join(f"{n} ({why})" for n, why in self.skipped))
        if self.missing:
            parts.append("not in the file (new): " + ", ".join(self.missing))
        if self.unused:
            parts.append(f"{len(self.unused)} file entries unused" + (f" ({', '.join(self.unused[:5])}"
                                                                      f"{', ...' if len(self.unused) > 5 else ''})"))
        return f"weights {self.origin}: " + "; ".join(parts)

    __str__ = summary


def read_tensors(model, source) -> tuple[dict[str, list[np.ndarray]], list[str]]:
    """{layer name: arrays in Keras order} for `model` from the source's file, and unused keys."""
    try:
        return _read_tensors(model, source)
    except (ZooError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a file damaged past its header: h5py OSError, SafetensorError...
        raise WeightsError(f"Cannot read the tensors of {source.path} ({type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:300]}): the file is damaged. Download or save it again.") from None


def _read_tensors(model, source) -> tuple[dict[str, list[np.ndarray]], list[str]]:
    fmt = source.format
    if fmt == "keras":
        from zoo.pretrained.formats.keras_h5 import read_keras3_for

        return read_keras3_for(source.path, model)
    if fmt == "keras_legacy_h5":
        from zoo.pretrained.formats.keras_h5 import read_legacy

        return read_legacy(source.path, model)
    if fmt in ("safetensors", "torch"):
        from zoo.pretrained.convert_torch import to_layers
        from zoo.pretrained.formats.torch_sd import read_state_dict

        return to_layers(read_state_dict(source.path, fmt), model, arch=source.arch, pretrained=source.pretrained)
    raise WeightsError(f"Unknown weights format {fmt!r} for {source.origin}.")


def _is_head(layer) -> bool:
    return type(layer).__name__ == "Dense"


def adapt_input_kernel(kernel: np.ndarray, channels: int) -> np.ndarray:
    """A first-conv kernel (kh, kw, c, out) for `channels` inputs, keeping the response to gray input.

    One channel: the sum over the file's channels (a gray image equals R=G=B). Otherwise (timm's
    adapt_input_conv): repeat the kernel, cut to `channels`, and scale by c/channels so
    activations keep their magnitude.
    """
    if channels == 1:
        return kernel.sum(axis=2, keepdims=True)
    reps = -(-channels // kernel.shape[2])
    return np.tile(kernel, (1, 1, reps, 1))[:, :, :channels, :] * (kernel.shape[2] / channels)


def load_weights(model, source) -> LoadReport:
    """Load `source` (a WeightsSource) into `model` by layer name; return the LoadReport."""
    tensors, unused = read_tensors(model, source)
    report = LoadReport(origin=source.origin, unused=list(unused))
    if not any(layer.name in tensors for layer in model.layers):
        raise WeightsError(
            f"No layer of {model.name!r} matches a tensor of {source.path} ({source.format}, "
            f"entries such as {', '.join(list(tensors)[:3]) or 'none'}). These weights are for another "
            f"architecture: pick weights made for {source.arch}."
        )
    first_conv = next((layer.name for layer in model.layers
                       if type(layer).__name__ == "Conv2D" and layer.weights), None)
    backbone_missing = []
    for layer in model.layers:
        if not layer.weights:
            continue
        arrays = tensors.pop(layer.name, None)
        if arrays is None:
            (report.missing if _is_head(layer) else backbone_missing).append(layer.name)
            continue
        want = [tuple(w.shape) for w in layer.weights]
        got = [tuple(a.shape) for a in arrays]
        if len(want) != len(got):
            raise WeightsError(f"Layer {layer.name!r} has {len(want)} weight tensors {want}, the file {source.path} "
                               f"has {len(got)} {got}. The layer and the weights disagree on bias or batch-norm "
                               f"parameters: check the architecture options (e.g. ResNet style).")
        if want == got:
            layer.set_weights(arrays)
            report.loaded.append(layer.name)
        elif _is_head(layer):
            report.skipped.append((layer.name, f"file {got[0]} vs model {want[0]}"))
        elif layer.name == first_conv and want[1:] == got[1:] and want[0][:2] == got[0][:2] \
                and want[0][3] == got[0][3]:
            arrays = [adapt_input_kernel(arrays[0], want[0][2])] + list(arrays[1:])
            layer.set_weights(arrays)
            report.loaded.append(layer.name)
            report.adapted.append((layer.name, f"input kernel {got[0]} -> {want[0]}"))
        else:
            bad = next(i for i, (w, g) in enumerate(zip(want, got)) if w != g)
            raise WeightsError(
                f"Shape mismatch in layer {layer.name!r} (weight {bad}): the model has {want[bad]}, the file "
                f"{source.path} has {got[bad]}. The weights do not fit this architecture or its options."
            )
    if backbone_missing:
        raise WeightsError(
            f"The weights {source.origin} have no tensors for {len(backbone_missing)} layer(s) of {model.name!r}: "
            f"{', '.join(backbone_missing[:5])}{', ...' if len(backbone_missing) > 5 else ''}. The file is for "
            f"another architecture or variant; pick weights made for {source.arch}."
        )
    report.unused.extend(tensors)
    object.__setattr__(model, "_zoo_load_report", report)
    (log.warning if (report.skipped or report.missing) else log.info)("%s", report.summary())
    return report
