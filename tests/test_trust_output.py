"""Output hygiene: control characters in file names and labels never reach the terminal raw (table,
CSV, error lines), and artefact names stay within the file-name limit."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from helpers import zoo_cli


def _image(path):
    Image.fromarray(np.full((28, 28, 3), 128, np.uint8)).save(path, format="PNG")
    return path


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_esc_sequences_in_file_names_are_escaped_in_table_and_csv(tmp_path, fmt):
    name = _image(tmp_path / "cat\x1b[2J\x1b]0;pwned\x07.png")
    # Wide enough that the table never wraps the escaped name (tmp paths are long under pytest-xdist).
    result = zoo_cli("predict", str(name), "--model", "lenet5", "--format", fmt, env={"COLUMNS": "500"})
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b[2J" in result.stdout


def test_esc_sequences_in_labels_are_escaped(tmp_path):
    from zoo.cli.predict import _table, csv_row

    record = {"source": "a.png", "ok": True, "task": "classification",
              "predictions": [{"label": "evil\x1b[31m\u202e", "index": 0, "score": 0.9}]}
    row = csv_row(record)
    assert "\x1b" not in row["label"] and "\u202e" not in row["label"]
    from rich.console import Console

    console = Console(record=True, width=200, force_terminal=False)
    console.print(_table([record]))
    text = console.export_text()
    assert "\x1b" not in text and "\\x1b[31m" in text


def test_error_line_escapes_control_characters(tmp_path):
    result = zoo_cli("predict", str(tmp_path / "no\x1b[2Jsuch.png"), "--model", "lenet5", "--format", "jsonl")
    assert "\x1b" not in result.stderr and "\x1b" not in result.stdout


def test_249_character_file_name_with_save_dir_is_written(tmp_path):
    name = _image(tmp_path / ("é" * 120 + "x" * 9 + ".png"))  # 249 bytes of UTF-8 in the name
    out = tmp_path / "out"
    result = zoo_cli("predict", str(name), "--model", "lenet5", "--save-dir", str(out), "--format", "jsonl")
    assert result.returncode == 0 and len(result.stderr.strip().splitlines()) <= 1, result.stderr
    [artefact] = list(out.iterdir())
    assert len(artefact.name.encode()) <= 200


def test_artefact_names_are_bounded_for_every_suffix(tmp_path):
    from zoo.data.sources import artefact_path

    path = artefact_path(tmp_path, "/x/" + "日" * 200 + ".jpg", suffix="_overlay.png")
    assert len(path.name.encode()) <= 200 and path.name.endswith("_overlay.png")
