"""`zoo predict` through the command line: records in order, formats, exit status 0 / 1 / 2."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import make_corpus, tiny_model, with_meta, write_images

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from zoo.modeldir import write_model_dir

    out = tmp_path_factory.mktemp("run") / "tiny"
    write_model_dir(with_meta(tiny_model()), out)
    return out


def _run(*args):
    from zoo.cli import cli

    return CliRunner().invoke(cli, ["predict", *map(str, args)], catch_exceptions=False)


def test_awkward_corpus_records_in_order_and_exit_1(tmp_path, model_dir):
    corpus = make_corpus(tmp_path / "awkward")
    result = _run(*(p for p, _ in corpus), "--model", model_dir, "--format", "jsonl", "--batch-size", "4")
    assert result.exit_code == 1, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["source"] for r in records] == [str(p) for p, _ in corpus]
    assert [r["ok"] for r in records] == [ok for _, ok in corpus]


def test_jsonl_schema_and_exit_0(tmp_path, model_dir):
    paths = write_images(tmp_path, 3)
    result = _run(tmp_path, "--model", model_dir, "--top-k", "2", "--conf", "0.5")  # task options are accepted
    assert result.exit_code == 0, result.output
    for line, path in zip(result.stdout.splitlines(), paths, strict=True):
        record = json.loads(line)
        assert set(record) == {"source", "ok", "task", "predictions"} and record["source"] == str(path)
        assert record["ok"] is True and record["task"] == "classification"
        assert [set(p) for p in record["predictions"]] == [{"label", "index", "score"}] * 2
        assert all(isinstance(p["label"], str) and isinstance(p["index"], int) and 0 <= p["score"] <= 1
                   for p in record["predictions"])


def test_csv_and_table(tmp_path, model_dir):
    write_images(tmp_path / "imgs", 2)
    (tmp_path / "imgs" / "bad.jpg").write_text("nope")
    result = _run(tmp_path / "imgs", "--model", model_dir, "--format", "csv")
    assert result.exit_code == 1
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [Path(r["source"]).name for r in rows] == ["bad.jpg", "img000.jpg", "img001.jpg"]
    assert [r["ok"] for r in rows] == ["False", "True", "True"] and rows[0]["error"]
    assert rows[1]["label"] in {"cat", "dog", "bird"}
    result = _run(tmp_path / "imgs", "--model", model_dir, "--format", "table")
    assert result.exit_code == 1 and "img001.jpg" in result.stdout and "error" in result.stdout


def test_usage_errors_are_one_line_exit_2(tmp_path, model_dir):
    image = write_images(tmp_path, 1)[0]
    for args in (["--model", "resnet_51"], ["--model", model_dir, "--top-k", "0"],
                 ["--model", tmp_path / "missing_dir" / "m.keras"], ["--model", model_dir, "--weights", "imagenet"]):
        result = _run(image, *args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_entry_point_exit_status(tmp_path, model_dir, capfd):
    """The console entry point (zoo.cli:main, click in non-standalone mode): exit 1 when one
    input fails, exit 2 with one line on a usage error, never a traceback."""
    from zoo.cli import main

    image = write_images(tmp_path, 1)[0]
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(image), str(tmp_path / "missing.png"), "--model", str(model_dir)])
    out = capfd.readouterr()
    assert exit_info.value.code == 1, out.err
    assert [json.loads(line)["ok"] for line in out.out.splitlines()] == [True, False]
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(image), "--model", "resnet_51"])
    out = capfd.readouterr()
    # (TensorFlow's C++ start-up lines, if any, are not ours)
    lines = [line for line in out.err.splitlines() if not line.startswith(("I0000", "W0000", "E0000", "WARNING: All"))]
    assert exit_info.value.code == 2 and len(lines) == 1 and lines[0].startswith("Error: Unknown model"), out.err


def test_readme_command_on_shipped_samples():
    """The README's first command: shipped LeNet-5 Fashion-MNIST weights on the shipped samples."""
    samples = REPO / "zoo" / "samples" / "fashion_mnist"
    result = _run(samples, "--model", "lenet5", "--weights", "fashion_mnist", "--format", "jsonl", "--top-k", "1")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 8
    # file names carry the true class ("0000_ankle_boot.png"); the shipped weights get most right
    def norm(text):
        return "".join(ch for ch in text.lower() if ch.isalpha())

    hits = sum(norm(r["predictions"][0]["label"]) == norm(Path(r["source"]).stem.split("_", 1)[1]) for r in records)
    assert hits >= 6, records
