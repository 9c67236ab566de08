"""`zoo list` and `zoo info`: the registry and the weights manifest as tables or JSON.

Reads only the registry table and the TOML manifest: TensorFlow is never imported here.
"""

from __future__ import annotations

import json

import click

from zoo.registry import TASKS


def human(n: int | float | None, unit: str = "") -> str:
    """25557032 -> "25.6M"; 0 or None (not measured yet) -> "-"."""
    if not n:
        return "-"
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.3g}{suffix}{unit}"
    return f"{n:g}{unit}"


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape)


def _metrics(row: dict) -> str:
    metrics = row.get("metrics") or {}
    return ", ".join(f"{k}={v}" for k, v in metrics.items() if not isinstance(v, (dict, list)))


@click.command(name="list")
@click.argument("pattern", required=False)
@click.option("--task", type=click.Choice(TASKS), help="Only models of this task.")
@click.option("--pretrained", is_flag=True, help="Only models with pretrained weights.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per model) instead of a table.")
def list_cmd(pattern: str | None, task: str | None, pretrained: bool, as_json: bool) -> None:
    """The registry as a table: name, task, params, MACs, input and weights tags.

    PATTERN is an fnmatch pattern ("resnet*"); without wildcards it matches as a substring.
    """
    from zoo.registry import info, list_models

    rows = [info(name) for name in list_models(pattern, task=task, pretrained=True if pretrained else None)]
    if as_json:
        out = [{**{k: r[k] for k in ("name", "family", "task", "params", "macs", "input_shape", "classes", "paper")},
                "weights": [w["tag"] for w in r["weights"]]} for r in rows]
        click.echo(json.dumps(out, indent=2))
        return
    from rich.table import Table

    from zoo.cli.common import console

    table = Table(title=None, box=None, header_style="bold")
    for column, justify in (("name", "left"), ("task", "left"), ("params", "right"), ("MACs", "right"),
                            ("input", "left"), ("weights", "left")):
        table.add_column(column, justify=justify, no_wrap=column != "weights")
    for r in rows:
        table.add_row(r["name"], r["task"], human(r["params"]), human(r["macs"]), _shape(r["input_shape"]),
                      ", ".join(w["tag"] for w in r["weights"]) or "-")
    out = console()
    if rows:
        out.print(table)
    else:
        click.echo("No model matches. Run `zoo list` without filters to see them all.", err=True)


@click.command(name="info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the full record as JSON.")
def info_cmd(name: str, as_json: bool) -> None:
    """Params, MACs, input size and the weights of model NAME, with their metrics and licence."""
    from zoo.registry import info

    record = info(name)
    if as_json:
        click.echo(json.dumps(record, indent=2, default=str))
        return
    from zoo.cli.common import console

    out = console()
    out.print(f"[bold]{record['name']}[/bold]  ({record['family']}, {record['task']})")
    out.print(f"  paper   {record['paper']}")
    out.print(f"  params  {record['params']:,} ({human(record['params'])})" if record["params"] else "  params  -")
    out.print(f"  MACs    {record['macs']:,} ({human(record['macs'])}) at {_shape(record['input_shape'])}"
              if record["macs"] else "  MACs    -")
    out.print(f"  input   {_shape(record['input_shape'])}   classes {record['classes']}")
    if not record["weights"]:
        out.print("  weights none (build with weights=None, or fine-tune with `zoo finetune`)")
        return
    out.print("  weights")
    for row in record["weights"]:
        facts = [row.get("format"), f"{row['classes']} classes" if row.get("classes") else None,
                 _shape(row.get("input_size") or []) or None,
                 f"preprocessing {(row.get('preprocessing') or {}).get('mode')}" if row.get("preprocessing") else None]
        out.print(f"    [bold]{row['tag']}[/bold]  ({', '.join(f for f in facts if f)})", highlight=False)
        options = row.get("arch_options") or {}
        for label, value in (("metrics", _metrics(row)), ("licence", row.get("licence")),
                             ("options", ", ".join(f"{k}={v!r}" for k, v in options.items())),
                             ("source", row.get("source"))):
            if value:
                out.print(f"      {label:<8} {value}", highlight=False, markup=False)
