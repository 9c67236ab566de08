"""Weight-file formats: detection from the bytes, and readers that return tensors per layer.

Every reader returns `{layer_name: [arrays in Keras weight order]}` for the model it loads
into (kernel, bias; gamma, beta, moving_mean, moving_variance), so zoo.pretrained.load only
matches names and shapes.
"""

from zoo.pretrained.formats.detect import detect_format

__all__ = ["detect_format"]
