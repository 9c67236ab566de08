"""`zoo evaluate MODEL DATA [--json]`: task metrics on labelled data."""

from __future__ import annotations

import json

import click

from zoo.cli.common import console, quiet_tensorflow


@click.command("evaluate", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model")
@click.argument("data")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
@click.option("--batch-size", "-b", type=int, default=32, show_default=True)
def evaluate_cmd(model, data, as_json, batch_size):
    """Metrics of MODEL (model directory, .keras file or registry name) on labelled DATA."""
    quiet_tensorflow()
    import zoo

    scores = zoo.evaluate(model, data, batch_size=batch_size)
    if as_json:
        click.echo(json.dumps(scores))
        return
    from rich.table import Table

    out = console()
    head = Table(title=f"{scores.get('model')} on {data}", show_header=False)
    for key, value in scores.items():
        if isinstance(value, (int, float, str)) and key != "model":
            head.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    out.print(head)
    per_class = scores.get("per_class")
    if per_class:
        table = Table("class", "precision", "recall", "f1", "support")
        for label, row in per_class.items():
            table.add_row(label, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"]))
        out.print(table)
