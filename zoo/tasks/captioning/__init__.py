"""Image captioning: CNN encoder + LSTM decoder (Show and Tell), trained and used through the
engine's Task interface. Light on import: TensorFlow loads only when a hook needs it."""

from zoo.tasks.captioning.task import TASK, CaptioningTask

__all__ = ["TASK", "CaptioningTask"]
