"""Pretrained weights: the manifest, verified downloads into ZOO_HOME, format readers
(zoo .weights.h5, legacy keras.applications HDF5, torchvision/timm safetensors) and loading.

Generic: zoo.registry hands over the model's registry row and its family's PretrainedSpec
(zoo.models.<family>.PRETRAINED); nothing here imports the registry or a family module.
    resolve_weights(spec, weights, *, pretrained, include_top=True, input_shape=None) -> WeightsSource
        # a tag, a path or a URL; fetches if needed; preprocessing adapted to input_shape's channels
    load_weights(model, source) -> LoadReport   # by layer name; head skipped if classes differ
By registry name: zoo.registry.resolve_weights(name, weights, ...).
"""

from __future__ import annotations


def resolve_weights(spec, weights, *, pretrained, include_top: bool = True, input_shape=None):
    from zoo.pretrained.resolve import resolve_weights as impl

    return impl(spec, weights, pretrained=pretrained, include_top=include_top, input_shape=input_shape)


def load_weights(model, source):
    from zoo.pretrained.load import load_weights as impl

    return impl(model, source)
