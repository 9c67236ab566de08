"""The `zoo` command line: a thin click layer over the public API.

Each command lives in its own module and is imported only when it runs, so `zoo --help` and
`zoo list` stay instant. Every command runs inside zoo.cli.common.cli_errors, the one mapper from
an error to one line on stderr and an exit status (2 usage mistakes, 1 any other failure).
"""

from __future__ import annotations

import importlib
import sys

import click

# command name -> "module:click command"
COMMANDS = {
    "list": "zoo.cli.listing:list_cmd",
    "info": "zoo.cli.listing:info_cmd",
    "predict": "zoo.cli.predict:predict_cmd",
    "finetune": "zoo.cli.finetune:finetune_cmd",
    "evaluate": "zoo.cli.evaluate:evaluate_cmd",
    "export": "zoo.cli.export:export_cmd",
    "weights": "zoo.cli.weights:weights_group",
    "bench": "zoo.cli.bench:bench_cmd",
    "tune": "zoo.cli.tune:tune_cmd",
    "explain": "zoo.cli.explain:explain_cmd",
}

HELP = {
    "list": "The registry as a table.",
    "info": "Params, MACs, input size and weights of a model.",
    "predict": "Predictions for image files, folders, globs and .txt lists.",
    "finetune": "Transfer learning (or training from scratch) on your data.",
    "evaluate": "Task metrics on labelled data.",
    "export": "Export to SavedModel, TFLite or ONNX, with a parity check.",
    "weights": "The weights cache: list, fetch, verify, import.",
    "bench": "Throughput of a model on this machine.",
    "tune": "Hyper-parameter search over fine-tuning options, trials in parallel (KerasTuner).",
    "explain": "Where the evidence is: heatmaps, peaks, neurons, sanity checks.",
}


class LazyGroup(click.Group):
    def invoke(self, ctx):
        from zoo.cli.common import cli_errors

        with cli_errors():
            return super().invoke(ctx)

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return _missing(name)
        return getattr(module, attr)

    def format_commands(self, ctx, formatter):
        # Short help from the table above, so `zoo --help` imports no command module.
        rows = [(name, HELP.get(name, "")) for name in COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _missing(name):
    @click.command(name=name, help=HELP.get(name, ""))
    def cmd():
        raise click.UsageError(f"`zoo {name}` is not available in this build of zoo.")

    return cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zoo", prog_name="zoo")
def cli():
    """zoo: classic vision networks, pretrained weights and fine-tuning, for Keras 3."""


def main(argv=None) -> None:
    """Console entry point: errors become one line on stderr and zoo's exit status (zoo.cli.common)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's C++ start-up chatter
    from zoo.cli import quiet
    from zoo.cli.common import report_error

    quiet.install()
    try:
        # Without standalone mode click returns ctx.exit(code)'s code instead of exiting.
        rc = cli.main(args=argv, prog_name="zoo", standalone_mode=False)
        sys.stdout.flush()  # a reader that left after the last write is noticed here, not at exit
    except click.exceptions.Exit as exc:
        rc = exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        rc = 130
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        rc = 130
    except Exception as exc:  # raised before a command ran: a bad top-level option
        rc = report_error(exc)
    sys.exit(rc if type(rc) is int else 0)
