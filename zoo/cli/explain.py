"""`zoo explain SOURCE... --model M`: a thin layer over zoo.explaining (maps, neurons, dream, sanity).

Output: a table on a terminal, JSON lines when piped (or --format jsonl). Exit status as `zoo
predict`: 0 every input succeeded, 1 some failed (or the --sanity check failed), 2 usage error.
"""

from __future__ import annotations

import json
import sys

import click

from zoo.cli.common import console, is_tty, quiet_tensorflow
from zoo.cli.predict import _progress

METHOD_CHOICES = ["gradcam", "gradcam++", "saliency", "smoothgrad", "integrated-gradients"]


@click.command("explain", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("sources", nargs=-1)
@click.option("--model", "-m", required=True, help="Registry name, model directory, or .keras file.")
@click.option("--weights", "-w", default=None, help="With a registry name: weights tag, path, or 'none'.")
@click.option("--method", type=click.Choice(METHOD_CHOICES, case_sensitive=False), default="gradcam",
              show_default=True, help="Attribution method.")
@click.option("--target", "-t", default="top", show_default=True,
              help="Class to explain: 'top' (the prediction), a label, or a class index.")
@click.option("--layer", default=None, help="Feature map for Grad-CAM (default: the last convolutional one); "
              "the layer for --dream.")
@click.option("--box", type=int, default=0, show_default=True,
              help="Detection: which predicted box to explain (0 = best; with --target LABEL, among that label's).")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default=None,
              help="Default: table on a terminal, jsonl when piped.")
@click.option("--save-dir", type=click.Path(file_okay=False), default="explain", show_default=True,
              help="Where heatmap PNGs (and --save-raw arrays, --neurons grids, --dream images) go.")
@click.option("--save-raw", is_flag=True, help="Also write each map as a float32 .npy at the original size.")
@click.option("--sanity", is_flag=True, help="Model-randomisation check (Adebayo et al. 2018): compare each map "
              "with the map of the model with its top layers re-initialised; fail if they barely differ.")
@click.option("--sanity-threshold", type=float, default=None,
              help="Mean Spearman correlation at or above which --sanity fails (default 0.5).")
@click.option("--neurons", default=None, metavar="LAYER[:CHANNELS]",
              help="Activation maximisation: a grid of what each channel responds to (e.g. conv5_block2_out:0-7).")
@click.option("--dream", is_flag=True, help="Deep dream on the SOURCE images (layer from --neurons or --layer).")
@click.option("--steps", type=int, default=None,
              help="Integrated gradients: path steps (32); --neurons: ascent steps (128); --dream: steps (60).")
@click.option("--samples", type=int, default=25, show_default=True, help="SmoothGrad: noisy copies averaged.")
@click.option("--noise", type=float, default=0.15, show_default=True,
              help="SmoothGrad: noise std as a fraction of the pixel range.")
@click.option("--batch-size", "-b", type=int, default=16, show_default=True)
@click.option("--recursive", "-r", is_flag=True, help="Look for images in subfolders of folder sources.")
@click.option("--workers", type=int, default=None, help="Decoding threads (default: CPU count, at most 8).")
@click.option("--max-pixels", type=int, default=None, help="Refuse larger images; 0 = no limit.")
@click.option("--conf", type=float, default=None, help="Detection: minimum score.")
@click.option("--iou", type=float, default=None, help="Detection: NMS IoU threshold.")
@click.option("--max-det", type=int, default=None, help="Detection: boxes kept per image.")
def explain_cmd(sources, model, weights, method, target, layer, box, fmt, save_dir, save_raw, sanity,
                sanity_threshold, neurons, dream, steps, samples, noise, batch_size, recursive, workers, max_pixels,
                conf, iou, max_det):
    """Where the evidence is: heatmaps and peaks for SOURCE... (files, folders, globs, .txt lists).

    \b
    zoo explain cat.jpg --model resnet50                      # Grad-CAM of the top class
    zoo explain photos/ --model runs/flowers --method smoothgrad --target tulip --format jsonl
    zoo explain shots/*.png --model runs/flowers --sanity     # exit 1 if the maps ignore the weights
    zoo explain --model resnet18 --neurons conv4_block2_out:0-7
    zoo explain cat.jpg --model resnet18 --dream --layer conv4_block2_out
    """
    quiet_tensorflow()
    fmt = fmt or ("table" if is_tty(sys.stdout) else "jsonl")
    if neurons is None and not sources:
        raise click.UsageError("Give SOURCE images to explain (or --neurons LAYER[:CHANNELS] alone).")
    if neurons is not None and sources and not dream:
        raise click.UsageError("--neurons starts from noise and takes no SOURCE; add --dream to dream on the images.")
    if dream and not sources:
        raise click.UsageError("--dream needs SOURCE images to dream on.")
    if dream or neurons is not None:
        failed = _neurons_or_dream(sources, model=model, weights=weights, spec=neurons, layer=layer, dream=dream,
                                   steps=steps, save_dir=save_dir, batch_size=batch_size, recursive=recursive,
                                   workers=workers, max_pixels=max_pixels, fmt=fmt)
        if failed:
            raise SystemExit(1)
        return
    from zoo.explaining import iter_explain
    from zoo.inference import count_inputs

    options = {k: v for k, v in dict(conf=conf, iou=iou, max_det=max_det).items() if v is not None}
    if steps is not None:
        options["steps"] = steps
    records = iter_explain(list(sources), model=model, weights=weights, method=method, target=target,
                           layer=layer, box=box, save_dir=save_dir, save_raw=save_raw, sanity=sanity,
                           batch_size=batch_size, recursive=recursive, workers=workers, max_pixels=max_pixels,
                           samples=samples, noise=noise, **options)
    total = count_inputs(list(sources), recursive=recursive) if is_tty(sys.stderr) else None
    failed, correlations = _emit(records, fmt=fmt, total=total)
    sanity_failed = False
    if sanity:
        from zoo.explaining.sanity import DEFAULT_THRESHOLD, verdict

        threshold = DEFAULT_THRESHOLD if sanity_threshold is None else sanity_threshold
        passed, line = verdict(correlations, method=method.lower(), threshold=threshold)
        click.echo(line, err=True)
        sanity_failed = not passed
    if failed or sanity_failed:
        # SystemExit, not ctx.exit: zoo.cli.main runs click with standalone_mode=False
        raise SystemExit(1)


def _neurons_or_dream(sources, *, model, weights, spec, layer, dream, steps, save_dir, batch_size, recursive,
                      workers, max_pixels, fmt) -> int:
    from zoo.explaining.neurons import Regularisers, iter_dream, neurons, parse_neurons

    if not dream:
        record = neurons(model, spec, weights=weights, save_dir=save_dir,
                         reg=Regularisers(steps=steps) if steps is not None else None)
        _emit([record], fmt=fmt, total=None)
        return 0
    channels = None
    if spec is not None:
        layer, channels = parse_neurons(spec)
    records = iter_dream(list(sources), model=model, weights=weights, layer=layer, channels=channels,
                         save_dir=save_dir, reg=Regularisers(steps=steps) if steps is not None else None,
                         batch_size=batch_size, recursive=recursive, workers=workers, max_pixels=max_pixels)
    return _emit(records, fmt=fmt, total=None)[0]


def _emit(records, *, fmt: str, total: int | None) -> tuple[int, list]:
    """Write records as they come; returns (how many failed, the sanity correlations seen)."""
    failed, rows, correlations = 0, [], []
    with _progress(total) as advance:
        for record in records:
            failed += not record["ok"]
            if record["ok"] and "sanity" in record:
                correlations.append(record["sanity"])
            advance()
            if fmt == "jsonl":
                click.echo(json.dumps(record, default=str))
            else:
                rows.append(record)
    if fmt == "table":
        console().print(_table(rows))
        if failed:
            click.echo(f"{failed} of {len(rows)} inputs failed.", err=True)
    return failed, correlations


def _table(records):
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_lines=False)
    for name, justify in (("source", "left"), ("label", "left"), ("score", "right"), ("peak", "right"),
                          ("written", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for record in records:
        source = escape(str(record.get("source", record.get("layer", ""))))
        if not record["ok"]:
            table.add_row(source, "[red]error[/red]", "", "", f"[red]{escape(record['error'])}[/red]")
            continue
        if record.get("method") == "neurons":
            channels = ", ".join(str(c) for c in record["channels"])
            table.add_row(escape(record["layer"]), f"channels {channels}", "", "", escape(record["grid"]))
            continue
        label = str(record.get("label", ""))
        if "sanity" in record and record["sanity"] is not None:
            label += f" (sanity rho {record['sanity']:.2f})"
        score = f"{record['score']:.3f}" if isinstance(record.get("score"), (int, float)) else ""
        peak = ", ".join(str(v) for v in record["peak"]) if record.get("peak") else ""
        written = record.get("heatmap") or record.get("image") or ""
        table.add_row(source, escape(label), score, peak, escape(str(written)))
    return table
