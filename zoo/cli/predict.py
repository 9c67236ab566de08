"""`zoo predict SOURCE... --model M`: a thin layer over zoo.inference.iter_predict.

Output: a rich table on a terminal, JSON lines when piped (or --format jsonl), or CSV. A progress
bar goes to stderr for long runs on a terminal. Exit status: 0 every input succeeded, 1 some
failed, 2 usage error (one line, no traceback; zoo.cli.common maps errors for every command).
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager

import click

from zoo.cli.common import console, is_tty, printable, quiet_tensorflow

CSV_COLUMNS = ["source", "ok", "task", "label", "index", "score", "error", "details"]


@click.command("predict", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("sources", nargs=-1, required=True)
@click.option("--model", "-m", required=True, help="Registry name, model directory, or .keras file.")
@click.option("--weights", "-w", default=None, help="With a registry name: weights tag, path, or 'none'. "
              "Default: the model's pretrained weights.")
@click.option("--top-k", "-k", type=int, default=5, show_default=True, help="Classes listed per image.")
@click.option("--batch-size", "-b", type=int, default=32, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv"]), default=None,
              help="Default: table on a terminal, jsonl when piped.")
@click.option("--save-dir", type=click.Path(file_okay=False), default=None,
              help="Write per-task artefacts here (annotated images, masks...).")
@click.option("--recursive", "-r", is_flag=True, help="Look for images in subfolders of folder sources.")
@click.option("--workers", type=int, default=None, help="Decoding threads (default: CPU count, at most 8).")
@click.option("--max-pixels", type=int, default=None,
              help="Refuse larger images (decompression bombs); 0 = no limit. Default: ZOO_MAX_PIXELS or 178,956,970.")
@click.option("--conf", type=float, default=None, help="Detection: minimum score.")
@click.option("--iou", type=float, default=None, help="Detection: NMS IoU threshold.")
@click.option("--max-det", type=int, default=None, help="Detection: boxes kept per image.")
@click.option("--beam-size", type=int, default=None, help="Captioning: beam width (1 = greedy).")
@click.option("--max-length", type=int, default=None, help="Captioning: longest caption, in tokens.")
@click.option("--length-penalty", "alpha", type=float, default=None,
              help="Captioning: length normalisation exponent for beam search (0 = none).")
def predict_cmd(sources, model, weights, top_k, batch_size, fmt, save_dir, recursive, workers, max_pixels,
                conf, iou, max_det, beam_size, max_length, alpha):
    """Predict SOURCE... : image files, folders, globs ("shots/*.jpg"), .txt lists of paths and URLs.

    \b
    zoo predict zoo/samples/fashion_mnist --model lenet5 --weights fashion_mnist
    zoo predict photos/ -r --model runs/flowers --format jsonl > preds.jsonl
    """
    quiet_tensorflow()
    fmt = fmt or ("table" if is_tty(sys.stdout) else "jsonl")
    task_options = {k: v for k, v in dict(conf=conf, iou=iou, max_det=max_det, beam_size=beam_size,
                                                       max_length=max_length, alpha=alpha).items()
                    if v is not None}
    from zoo.inference import count_inputs, iter_predict

    records = iter_predict(list(sources), model=model, weights=weights, top_k=top_k, batch_size=batch_size,
                           recursive=recursive, save_dir=save_dir, workers=workers, max_pixels=max_pixels,
                           **task_options)
    total = count_inputs(list(sources), recursive=recursive) if is_tty(sys.stderr) else None
    failed = _emit(records, fmt=fmt, total=total)
    if failed:
        # SystemExit, not ctx.exit: zoo.cli.main runs click with standalone_mode=False, where
        # ctx.exit's code would be returned and lost
        raise SystemExit(1)


def _emit(records, *, fmt: str, total: int | None) -> int:
    """Write records as they come; returns how many failed."""
    failed = 0
    rows = []
    writer = None
    with _progress(total) as advance:
        for record in records:
            failed += not record["ok"]
            advance()
            if fmt == "jsonl":
                click.echo(json.dumps(record, default=str))
            elif fmt == "csv":
                import csv

                if writer is None:
                    writer = csv.DictWriter(sys.stdout, fieldnames=CSV_COLUMNS, lineterminator="\n")
                    writer.writeheader()
                writer.writerow(csv_row(record))
                sys.stdout.flush()
            else:
                rows.append(record)
    if fmt == "table":
        console().print(_table(rows))
        if failed:
            click.echo(f"{failed} of {len(rows)} inputs failed.", err=True)
    return failed


@contextmanager
def _progress(total: int | None):
    """A progress bar on stderr for long runs on a terminal; a no-op otherwise."""
    if not total or total < 64:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("predict"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console(stderr=True), transient=True) as bar:
        task = bar.add_task("predict", total=total)
        yield lambda: bar.advance(task)


def csv_row(record: dict) -> dict:
    top = (record.get("predictions") or [{}])[0]
    details = {k: v for k, v in record.items() if k not in ("source", "ok", "task", "error")}
    row = {"source": record["source"], "ok": record["ok"], "task": record.get("task", ""),
           "label": top.get("label", ""), "index": top.get("index", ""), "score": top.get("score", ""),
           "error": record.get("error", ""), "details": json.dumps(details, default=str) if details else ""}
    return {k: printable(v) if isinstance(v, str) else v for k, v in row.items()}


def _summary(record: dict) -> tuple[str, str, str]:
    """(main result, score, details) of a record of any task, for the table."""
    preds = record.get("predictions") or []
    if "caption" in record:
        return str(record["caption"]), "", ""
    if "detections" in record:
        dets = record["detections"]
        names = ", ".join(f"{d['label']} {d['score']:.2f}" for d in dets[:5])
        return f"{len(dets)} objects", "", names + (" ..." if len(dets) > 5 else "")
    if "mask" in record:
        classes = sorted((record.get("classes") or {}).items(), key=lambda kv: -kv[1])[:4]
        return str(record["mask"]), "", ", ".join(f"{k} {v:.0%}" for k, v in classes)
    if preds:
        rest = ", ".join(f"{p['label']} {p['score']:.3f}" for p in preds[1:])
        return str(preds[0]["label"]), f"{preds[0]['score']:.3f}", rest
    return "", "", ""


def _table(records):
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_lines=False)
    for name, justify in (("source", "left"), ("prediction", "left"), ("score", "right"), ("also", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for record in records:
        source = escape(printable(record["source"]))
        if record["ok"]:
            table.add_row(source, *(escape(printable(part)) for part in _summary(record)))
        else:
            table.add_row(source, f"[red]error[/red]", "", f"[red]{escape(printable(record['error']))}[/red]")
    return table
