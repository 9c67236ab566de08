"""Object detection (YOLOv2 head: YOLO-LITE, or a zoo backbone under it).

    data.py      VOC, COCO JSON and YOLO txt readers -> samples
    augment.py   box-aware augmentation and mosaic (numpy)
    pipeline.py  samples -> tf.data (decode once, augment, encode targets), train/val split
    boxes.py     IoU, k-means anchors, target encoding, decoding, NMS
    loss.py      the YOLOv2 loss (keras.ops)
    metrics.py   COCO mAP (pycocotools) and VOC07 AP
    predict.py   raw head -> boxes in original pixels
    draw.py      annotated images
    train.py     the detector to train: weights, backbone weights, objectness prior
    options.py   DetectionOptions (`--opt key=value`)
    task.py      DetectionTask, the hooks the engine drives

Importing this package loads numpy only: prediction imports it for every detection model.
"""

from __future__ import annotations

from zoo.tasks.detection.options import DetectionOptions
from zoo.tasks.detection.task import DetectionTask

TASK = DetectionTask()

__all__ = ["TASK", "DetectionOptions", "DetectionTask"]
