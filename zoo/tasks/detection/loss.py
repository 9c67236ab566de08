"""The YOLOv2 loss in keras.ops (any Keras backend), for targets from boxes.encode_targets.

Per image, summed over anchor slots (Redmon & Farhadi 2016; objectness and classes as in YOLOv3):
  coordinates  (object slots)   lambda_coord * (2 - w*h) * [xy(txy, offset) + (twh - log(wh/anchor))^2], xy being
                                (sigmoid(txy) - offset)^2 (default, as darknet) or BCE(sigmoid(txy), offset) - H(offset)
  objectness   (object slots)   lambda_obj   * BCE(to, 1)
  no object    (other slots)    lambda_noobj * BCE(to, 0), skipped where the predicted box already
                                overlaps a true box by more than `ignore_thresh` IoU
  classes      (object slots)   lambda_class * softmax cross-entropy
The (2 - w*h) factor weighs small boxes up, as darknet does.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="zoo")
class YOLOLoss(keras.losses.Loss):
    """YOLOv2 loss; y_true (B, S, S, A, 6) from encode_targets, y_pred the raw head (B, S, S, A*(5+C))."""

    def __init__(self, anchors, num_classes: int, *, ignore_thresh: float = 0.6, lambda_coord: float = 1.0,
                 lambda_obj: float = 1.0, lambda_noobj: float = 1.0, lambda_class: float = 1.0,
                 xy_loss: str = "mse", name: str = "yolo_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.anchors = [[float(w), float(h)] for w, h in anchors]
        self.num_classes = int(num_classes)
        self.ignore_thresh = float(ignore_thresh)
        self.lambda_coord = float(lambda_coord)
        self.lambda_obj = float(lambda_obj)
        self.lambda_noobj = float(lambda_noobj)
        self.lambda_class = float(lambda_class)
        if xy_loss not in ("bce", "mse"):
            raise ValueError(f"`xy_loss` must be 'bce' or 'mse'. Received: xy_loss={xy_loss!r}.")
        self.xy_loss = xy_loss

    def call(self, y_true, y_pred):
        ops = keras.ops
        a = len(self.anchors)
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "float32")
        grid_h, grid_w = ops.shape(y_pred)[1], ops.shape(y_pred)[2]
        t = ops.reshape(y_pred, (-1, grid_h, grid_w, a, 5 + self.num_classes))
        anchors = ops.convert_to_tensor(self.anchors, dtype="float32")
        grid = ops.cast(ops.stack([grid_w, grid_h]), "float32")
        cols = ops.cast(ops.arange(grid_w), "float32")[None, None, :, None]
        rows = ops.cast(ops.arange(grid_h), "float32")[None, :, None, None]
        cell = ops.stack([ops.broadcast_to(cols, ops.shape(t)[:4]), ops.broadcast_to(rows, ops.shape(t)[:4])], -1)

        true_xy, true_wh = y_true[..., 0:2], y_true[..., 2:4]
        obj = y_true[..., 4]
        true_cls = ops.cast(y_true[..., 5], "int32")

        pred_off = ops.sigmoid(t[..., 0:2])
        pred_twh = t[..., 2:4]
        true_off = true_xy * grid - cell
        true_twh = ops.log(ops.maximum(true_wh, 1e-9) / anchors)
        scale = 2.0 - true_wh[..., 0] * true_wh[..., 1]
        if self.xy_loss == "bce":
            # BCE on the sigmoid offsets minus the target's own entropy (zero at a perfect
            # prediction): its gradient (p - t) does not vanish as MSE's p(1 - p)(p - t) does.
            t_off = ops.clip(true_off, 0.0, 1.0)
            logit_xy = t[..., 0:2]
            bce = ops.softplus(logit_xy) - t_off * logit_xy
            entropy = -(t_off * ops.log(ops.maximum(t_off, 1e-7)) + (1 - t_off) * ops.log(ops.maximum(1 - t_off, 1e-7)))
            xy = bce - entropy
        else:
            xy = ops.square(pred_off - true_off)
        coord = ops.sum(xy + ops.square(pred_twh - true_twh), axis=-1)
        coord = self.lambda_coord * ops.sum(ops.reshape(obj * scale * coord, (-1, grid_h * grid_w * a)), axis=1)

        # Ignore mask: best IoU of each predicted box with any true box of the same image.
        pred_xy = (cell + pred_off) / grid
        pred_wh = anchors * ops.exp(ops.minimum(pred_twh, 10.0))
        n = grid_h * grid_w * a
        pred_box = ops.reshape(ops.concatenate([pred_xy - pred_wh / 2, pred_xy + pred_wh / 2], -1), (-1, n, 1, 4))
        true_box = ops.reshape(ops.concatenate([true_xy - true_wh / 2, true_xy + true_wh / 2], -1), (-1, 1, n, 4))
        lt = ops.maximum(pred_box[..., :2], true_box[..., :2])
        rb = ops.minimum(pred_box[..., 2:], true_box[..., 2:])
        inter = ops.prod(ops.maximum(rb - lt, 0.0), axis=-1)
        area_p = ops.prod(pred_box[..., 2:] - pred_box[..., :2], axis=-1)
        area_t = ops.prod(true_box[..., 2:] - true_box[..., :2], axis=-1)
        iou = inter / ops.maximum(area_p + area_t - inter, 1e-9)
        best = ops.max(iou * ops.reshape(obj, (-1, 1, n)), axis=2)
        ignore = ops.cast(best > self.ignore_thresh, "float32")

        logit = ops.reshape(t[..., 4], (-1, n))
        obj_flat = ops.reshape(obj, (-1, n))
        # BCE with logits: softplus(-x) for target 1, softplus(x) for target 0.
        pos = self.lambda_obj * ops.sum(obj_flat * ops.softplus(-logit), axis=1)
        neg = self.lambda_noobj * ops.sum((1.0 - obj_flat) * (1.0 - ignore) * ops.softplus(logit), axis=1)

        cls_logits = t[..., 5:]
        log_probs = ops.log_softmax(cls_logits, axis=-1)
        picked = ops.sum(log_probs * ops.one_hot(true_cls, self.num_classes), axis=-1)
        cls = -self.lambda_class * ops.sum(ops.reshape(obj * picked, (-1, n)), axis=1)
        return coord + pos + neg + cls

    def get_config(self):
        return {**super().get_config(), "anchors": self.anchors, "num_classes": self.num_classes,
                "ignore_thresh": self.ignore_thresh, "lambda_coord": self.lambda_coord, "lambda_obj": self.lambda_obj,
                "lambda_noobj": self.lambda_noobj, "lambda_class": self.lambda_class, "xy_loss": self.xy_loss}
