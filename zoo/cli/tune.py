"""`zoo tune MODEL DATA --out DIR`: flags map 1:1 onto zoo.tune."""

from __future__ import annotations

import click

from zoo.cli.common import quiet_tensorflow
from zoo.cli.finetune import _task_option

CTX = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


@click.command("tune", context_settings=CTX)
@click.argument("model")
@click.argument("data")
@click.argument("more_space", nargs=-1, metavar="[KEY=VALUES]...")
@click.option("--out", "-o", required=True, help="Search folder: trials/, trials.csv, best/, search.png.")
@click.option("--trials", "-n", type=int, default=10, show_default=True, help="Trials in all (Hyperband: at most).")
@click.option("--workers", "-j", type=int, default=1, show_default=True,
              help="Worker processes on this machine; the cores (and GPUs) are split between them.")
@click.option("--epochs", "-e", type=int, default=10, show_default=True, help="Epochs per trial (Hyperband: the most).")
@click.option("--search", type=click.Choice(["random", "bayesian", "hyperband"]), default="random", show_default=True)
@click.option("--space", "space", multiple=True,
              help="KEY=VALUES overriding the task's default space: lo:hi[:log] a range, a,b,c a choice, one value "
                   "fixed. Several may follow one --space: --space lr=1e-4:1e-2:log unfreeze=1,2,all.")
@click.option("--objective", default=None,
              help="Metric to maximise (default: accuracy, map, miou or bleu4 by task), or val_loss to minimise.")
@click.option("--port", type=int, default=None, help="The oracle's gRPC port on 127.0.0.1 (default: a free one).")
@click.option("--weights", "-w", default=None,
              help="Start weights of every trial (tag, path or 'none'; default: auto).")
@click.option("--val", default=None,
              help="Validation folder (default: a stratified split of DATA, the same for every trial).")
@click.option("--image-size", type=int, default=None, help="Square input size (default: the model's).")
@click.option("--backbone", default=None, help="Backbone of detection / segmentation / captioning models.")
@click.option("--seed", type=int, default=0, show_default=True, help="Data split and the search's sampling.")
@click.option("--task-option", "--opt", "task_options", multiple=True, callback=_task_option,
              help="Task-specific key=value for every trial (repeatable).")
@click.option("--resume", is_flag=True, help="Continue the search in OUT after a crash or Ctrl-C.")
@click.option("--overwrite", is_flag=True, help="Replace the search in OUT.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines, only the summary table.")
def tune_cmd(model, data, more_space, out, space, quiet, weights, val, image_size, backbone, task_options, **kwargs):
    """Search zoo finetune's options for MODEL on DATA with KerasTuner, trials in parallel.

    Across machines, run the same command on each with KerasTuner's variables: KERASTUNER_TUNER_ID=chief
    (and KERASTUNER_ORACLE_IP / KERASTUNER_ORACLE_PORT, where it serves) on one, another id elsewhere.
    """
    from zoo.errors import UsageError
    from zoo.training.tune_space import parse_space_args

    stray = [word for word in more_space if "=" not in word]
    if stray:
        raise UsageError(f"Got unexpected extra argument ({stray[0]}). MODEL and DATA come first; "
                         f"KEY=VALUES words belong to --space.")
    if more_space and not space:
        raise UsageError(f"Got unexpected extra argument ({more_space[0]}); put KEY=VALUES after --space.")
    parsed = parse_space_args(list(space) + list(more_space)) if space else None
    options = {"seed": kwargs.pop("seed")}
    for key, value in (("val", val), ("image_size", image_size), ("backbone", backbone)):
        if value is not None:
            options[key] = value
    if weights is not None:
        options["weights"] = None if weights.lower() == "none" else weights
    if task_options:
        options["task_options"] = task_options
    quiet_tensorflow()
    import zoo

    zoo.tune(model, data, out=out, space=parsed, verbose=1 if quiet else 2, **options, **kwargs)
