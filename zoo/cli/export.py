"""`zoo export MODEL --format savedmodel|tflite|onnx --out PATH`: a thin layer over zoo.export.

Prints the parity figure (max |exported - Keras| on sample inputs). Exit 0 on success, 1 when
the artefact fails the parity check (nothing is written), 2 on a usage error.
"""

from __future__ import annotations

import click

from zoo.cli.common import quiet_tensorflow


@click.command("export", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model")
@click.option("--format", "fmt", required=True, type=click.Choice(["savedmodel", "tflite", "onnx"]))
@click.option("--out", "-o", required=True, type=click.Path(), help="Artefact path (a folder for savedmodel).")
@click.option("--weights", "-w", default=None, help="With a registry name: weights tag, path, or 'none'.")
@click.option("--quantize", type=click.Choice(["float16", "int8"]), default=None, help="TFLite quantisation.")
@click.option("--calibration", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of typical images: int8 representative data and parity inputs.")
@click.option("--tolerance", type=float, default=None,
              help="Allowed max abs difference, relative to max(1, |outputs|). Default by precision.")
@click.option("--input-dtype", type=click.Choice(["float32", "uint8"]), default="float32", show_default=True,
              help="Pixel input type of the artefact (uint8: integer pixels in [0, 255]).")

@click.option("--overwrite", is_flag=True, default=False,
              help="Replace an existing --out: a file, or the folder of a previous zoo export.")
def export_cmd(model, fmt, out, weights, quantize, calibration, tolerance, input_dtype, overwrite):
    """Export MODEL (registry name, model directory or .keras file) and check it against Keras.

    \b
    zoo export runs/flowers --format tflite --quantize float16 --out flowers.tflite
    zoo export resnet50 --weights imagenet --format onnx --out resnet50.onnx
    """
    quiet_tensorflow()
    from zoo.exporting import export_with_report

    path, report = export_with_report(model, format=fmt, out=out, weights=weights, quantize=quantize,
                                      input_dtype=input_dtype,
                                      calibration=calibration, tolerance=tolerance, overwrite=overwrite)
    agreement = f", top-1 agreement {report['top1_agreement']:.0%}" if "top1_agreement" in report else ""
    click.echo(f"wrote {path} ({report['size_bytes'] / 1e6:.2f} MB, {fmt}{'/' + quantize if quantize else ''}): "
               f"max abs difference from Keras {report['max_abs_diff']:.3g} on {report['samples']} inputs "
               f"(allowed {report['allowed']:.3g}){agreement}")

