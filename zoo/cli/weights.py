"""`zoo weights list | fetch | verify | import`: the weights cache (logic in zoo.pretrained.cache)."""

from __future__ import annotations

import json
import sys

import click


@click.group(name="weights")
def weights_group():
    """The weights cache: list, fetch, verify, import."""


@weights_group.command(name="list")
@click.argument("arch", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row.")
def list_cmd(arch, as_json):
    """Weights in the manifest, with metrics, licence and whether they are cached here."""
    from zoo.pretrained.cache import list_rows

    rows = list_rows(arch)
    if as_json:
        for row in rows:
            click.echo(json.dumps({k: (str(v) if k.endswith("cached") and v else v) for k, v in row.items()},
                                  default=str))
        return
    from rich.console import Console
    from rich.table import Table

    from zoo.cli.common import is_tty

    # Piped output keeps whole names (rich would squeeze the table to 80 columns).
    out = Console(soft_wrap=True) if is_tty() else Console(width=200, soft_wrap=True)
    table = Table("weights", "format", "classes", "top-1 / acc", "licence", "cached")
    for row in rows:
        metrics = row.get("metrics", {})
        score = metrics.get("top1", metrics.get("test_accuracy"))
        cached = "shipped" if "file" in row and row["cached"] else ("yes" if row["cached"] else "")
        if row.get("notop_cached"):
            cached = (cached + " +notop").strip()
        table.add_row(row["key"], row["format"], str(row["classes"]), "" if score is None else f"{score}",
                      row["licence"].split(";")[0], cached)
    out.print(table)


@weights_group.command(name="fetch")
@click.argument("spec", metavar="ARCH.TAG|URL")
@click.option("--sha256", default=None, help="Expected sha256 of a URL's file.")
@click.option("--md5", default=None, help="Expected md5 of a URL's file.")
@click.option("--notop", is_flag=True, help="The file without classifier head, where the manifest has one.")
@click.option("--allow-http", is_flag=True, help="Accept a plain-http URL (a trusted local mirror).")
@click.option("--max-bytes", type=click.IntRange(min=1), default=None,
              help="Stop a URL download past this size. Default: ZOO_MAX_DOWNLOAD_BYTES or 2 GiB.")
def fetch_cmd(spec, sha256, md5, notop, allow_http, max_bytes):
    """Download and verify weights into the cache; print the cached path."""
    from zoo.errors import UsageError
    from zoo.pretrained.cache import fetch_weights

    if sha256 and md5:
        raise UsageError(f"Give --sha256 or --md5, not both. Received: --sha256 {sha256} --md5 {md5}.")
    path = fetch_weights(spec, sha256=sha256.lower() if sha256 else None, md5=md5.lower() if md5 else None,
                         notop=notop, allow_http=allow_http, max_bytes=max_bytes)
    click.echo(str(path))


@weights_group.command(name="verify")
@click.option("--delete", is_flag=True, help="Remove corrupted files (they are fetched again on next use).")
def verify_cmd(delete):
    """Check every cached file against its checksum; exit 1 when one is corrupted."""
    from zoo.pretrained.cache import verify_cache

    entries = verify_cache()
    for entry in entries:
        click.echo(f"{entry.status:10} {entry.path}  ({entry.detail})")
        if delete and entry.status == "corrupt":
            entry.path.unlink(missing_ok=True)
    bad = [e for e in entries if e.status == "corrupt"]
    click.echo(f"{len(entries)} files, {len(bad)} corrupted" + (" (deleted)" if delete and bad else ""), err=True)
    if bad:
        sys.exit(1)


@weights_group.command(name="import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--arch", required=True, help="Registry model the weights are for, e.g. resnet50.")
@click.option("--tag", required=True, help="Name to use them by: zoo.build(ARCH, weights=TAG).")
@click.option("--force", is_flag=True, help="Replace an earlier import with the same tag.")
def import_cmd(path, arch, tag, force):
    """Copy a weights file into the cache and register it as ARCH.TAG (works offline afterwards)."""
    from zoo.registry import import_weights

    row = import_weights(path, arch=arch, tag=tag, force=force)
    click.echo(f"{row['key']}: {row['format']}, {row['classes']} classes, sha256 {row['sha256']} -> {row['file']}")
