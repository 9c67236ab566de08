"""`zoo bench MODEL`: throughput on this machine, a thin layer over zoo.bench."""

from __future__ import annotations

import json

import click

from zoo.cli.common import console, quiet_tensorflow


@click.command("bench", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model")
@click.option("--mode", type=click.Choice(["forward", "train", "predict"]), default="forward", show_default=True,
              help="forward: compiled inference copy; train: SGD steps; predict: files end to end "
                   "(decode, resize, forward, task postprocess such as NMS).")
@click.option("--batch-size", "-b", type=int, default=None,
              help="Images per call. Default 32 (1 for detection models in predict mode).")
@click.option("--precision", type=click.Choice(["float32", "mixed_float16", "mixed_bfloat16", "auto"]),
              default="float32", show_default=True)
@click.option("--image-size", type=int, default=None, help="Input side in pixels (registry names only).")
@click.option("--steps", type=int, default=10, show_default=True, help="Timed calls; the median is reported.")
@click.option("--warmup", type=int, default=2, show_default=True, help="Untimed calls first.")
@click.option("--weights", "-w", default=None, help="Weights tag or path (registry names only). Default: random.")
@click.option("--xla/--no-xla", default=None, help="jit_compile the step. Default: on with a GPU, off on CPU.")
@click.option("--no-optimize", is_flag=True, help="Run the model as it is, not zoo.inference_model's copy.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def bench_cmd(model, mode, batch_size, precision, image_size, steps, warmup, weights, xla, no_optimize, as_json):
    """Throughput of MODEL (registry name, model directory or .keras file): images/s, ms per batch,
    MAC/s, the fraction of this CPU's float32 peak and peak memory."""
    quiet_tensorflow()
    from zoo.benchmark import bench

    result = bench(model, mode=mode, batch_size=batch_size, precision=precision, image_size=image_size,
                   steps=steps, warmup=warmup, weights=weights, jit_compile=xla, optimize=not no_optimize)
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
        return
    from rich.table import Table

    table = Table(title=f"zoo bench {result['model']} --mode {mode}", show_header=False)
    cpu = result["cpu"]
    rows = [
        ("device", result["device"] if result["device"] != "CPU" else f"CPU: {cpu['cpu']}"),
        ("batch size / precision", f"{result['batch_size']} / {result['precision']}"),
        ("input", "x".join(str(d) for d in result["image_size"])),
        ("images/s", f"{result['images_per_s']:.2f}"),
        ("ms per batch (median, min)", f"{result['ms_per_batch']:.1f}, {result['ms_per_batch_min']:.1f}"),
    ]
    if result["macs_per_s"]:
        rows.append(("GMAC/s", f"{result['macs_per_s'] / 1e9:.1f}"))
    if result["peak_fraction"] is not None:
        rows.append(("of CPU float32 peak", f"{100 * result['peak_fraction']:.1f}% of {cpu['peak_flops'] / 1e9:.0f} "
                     f"GFLOP/s ({cpu['cores']} cores x {cpu['clock_mhz']:.0f} MHz x {cpu['vector_bits'] // 32} lanes "
                     f"x {cpu['fma_units']} FMA x 2)"))
    if "mixed_precision_speedup" in result:
        rows.append(("mixed precision speedup", f"{result['mixed_precision_speedup']:.2f}x over float32"))
    rows.append(("peak RSS", f"{result['peak_rss_mb']:.0f} MB"))
    for key, value in rows:
        table.add_row(key, value)
    console().print(table)
