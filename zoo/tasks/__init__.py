"""One package per task (classification, detection, segmentation, captioning), each subclassing
the engine's zoo.training.task.Task and exposing it as `TASK`; zoo.training.task.get_task(name)
finds it by name, so the engine imports no concrete task."""
