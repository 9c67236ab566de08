"""`zoo finetune MODEL DATA --out DIR`: flags map 1:1 onto zoo.finetune / TrainOptions."""

from __future__ import annotations

import click

from zoo.cli.common import quiet_tensorflow

CTX = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


def _task_option(ctx, param, values):
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"must be key=value. Received: {item!r}.")
        out[key.strip().replace("-", "_")] = _scalar(value.strip())
    return out


def _scalar(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _lr_option(ctx, param, value):
    if value is None or value.lower() == "find":
        return value and "find"
    try:
        rate = float(value)
    except ValueError:
        raise click.BadParameter(f"must be a positive number or 'find'. Received: {value!r}.") from None
    if not rate > 0:
        raise click.BadParameter(f"must be a positive number or 'find'. Received: {value!r}.")
    return rate


@click.command("finetune", context_settings=CTX)
@click.argument("model")
@click.argument("data")
@click.option("--out", "-o", required=True, help="Model directory to write (refused if it holds another run).")
@click.option("--weights", "-w", default="auto", show_default=True,
              help="Weights tag or path, or 'none' to train from scratch; 'auto' = the model's pretrained weights.")
@click.option("--epochs", "-e", type=int, default=10, show_default=True, help="All stages together.")
@click.option("--head-epochs", type=int, default=None,
              help="Stage 1 (frozen base). Default: enough epochs for --head-steps steps, at most half of --epochs.")
@click.option("--head-steps", type=int, default=100, show_default=True,
              help="Optimizer steps the default stage 1 takes.")
@click.option("--batch-size", "-b", type=int, default=None,
              help="Global batch size. Default: min(32, training images / 8), at least 8.")
@click.option("--lr", callback=_lr_option, default=None,
              help="Peak learning rate (stage 1, or the only stage), or 'find' for an LR range test that writes "
                   "OUT/lr_find.png and uses its suggestion. Default: 5e-3.")
@click.option("--finetune-lr", type=float, default=None, help="Peak learning rate of stage 2's top block. Default: --lr / 2.")
@click.option("--unfreeze", default="all", show_default=True, help="Stage 2: 'all', 'none' or N top blocks.")
@click.option("--layer-decay", type=float, default=None,
              help="Stage 2 LR multiplier per block below the top (1 = off). Default: the bottom block at --lr / 100.")
@click.option("--warmup", type=float, default=0.1, show_default=True, help="Fraction of each stage's steps warming up.")
@click.option("--schedule", type=click.Choice(["onecycle", "constant"]), default="onecycle", show_default=True,
              help="Per stage: warm-up then cosine decay, or a fixed learning rate.")
@click.option("--weight-decay", type=float, default=1e-4, show_default=True)
@click.option("--optimizer", type=click.Choice(["adamw", "sgd"]), default="adamw", show_default=True)
@click.option("--label-smoothing", type=float, default=0.1, show_default=True)
@click.option("--bn", type=click.Choice(["frozen", "train"]), default="train", show_default=True,
              help="Stage 2: the unfrozen batch norm layers train (their statistics follow your data), or stay "
                   "in inference mode as in the Keras guide.")
@click.option("--dropout", type=float, default=0.2, show_default=True, help="Before a newly created classifier.")
@click.option("--early-stopping", type=int, default=5, show_default=True, help="Patience in epochs; 0 = off.")
@click.option("--cache-features", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
              help="Train the head on precomputed base features (frozen base, no augmentation).")
@click.option("--augment", type=click.Choice(["none", "light", "strong"]), default="light", show_default=True,
              help="light: small shifts and zoom; strong: also rotation and contrast.")
@click.option("--flip", type=click.Choice(["none", "horizontal", "vertical", "both"]), default="none",
              show_default=True, help="Random flips, for data whose class a flip keeps (not digits or text).")
@click.option("--class-weights", type=click.Choice(["auto", "none"]), default="auto", show_default=True)
@click.option("--val", default=None, help="Validation folder (same classes). Default: a stratified split of DATA.")
@click.option("--val-split", type=float, default=0.2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--image-size", type=int, default=None, help="Square input size (default: the model's).")
@click.option("--backbone", default=None, help="Backbone of detection / segmentation / captioning models.")
@click.option("--precision", type=click.Choice(["auto", "float32", "mixed_float16", "mixed_bfloat16"]),
              default="auto", show_default=True, help="auto: fp16 on GPU CC 7.x, bf16 on 8.0+, float32 on CPU.")
@click.option("--xla/--no-xla", default=None, help="XLA compilation (default: on with a GPU).")
@click.option("--strategy", type=click.Choice(["auto", "none", "mirrored", "multiworker"]), default="auto",
              show_default=True, help="multiworker reads TF_CONFIG.")
@click.option("--nan", type=click.Choice(["rollback", "stop"]), default="rollback", show_default=True,
              help="On a NaN/Inf loss: roll back to the last good epoch with half the LR, or stop.")
@click.option("--tensorboard", is_flag=True, help="Write TensorBoard logs to OUT/tensorboard.")
@click.option("--resume", is_flag=True, help="Continue the run in OUT after a crash.")
@click.option("--overwrite", is_flag=True, help="Replace the run in OUT.")
@click.option("--task-option", "--opt", "task_options", multiple=True, callback=_task_option,
              help="Task-specific key=value (repeatable).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars, one line per epoch.")
def finetune_cmd(model, data, out, quiet, early_stopping, **kwargs):
    """Fine-tune MODEL (registry name, model directory, or hub:PATH) on DATA; write the model directory OUT."""
    quiet_tensorflow()
    import zoo

    weights = kwargs.pop("weights")
    kwargs["weights"] = None if weights.lower() == "none" else weights
    zoo.finetune(model, data, out=out, early_stopping=early_stopping or None, verbose=2 if quiet else 1, **kwargs)
