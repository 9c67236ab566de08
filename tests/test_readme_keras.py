"""The README's Keras and export snippets, run as a user types them (a script in a fresh folder)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _snippet(section: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", body, re.S).group(1)


def _run(section: str, folder: Path) -> subprocess.CompletedProcess:
    script = folder / "snippet.py"
    script.write_text(_snippet(section), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run([sys.executable, str(script)], cwd=folder, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def test_use_it_from_keras_snippet_runs_as_written(tmp_path):
    run = _run("Use it from Keras", tmp_path)
    assert "(2, 512)" in run.stdout
    assert (tmp_path / "lenet5.keras").is_file()


def test_predict_from_an_export_snippet_runs_as_written(tmp_path):
    run = _run("Predict and export", tmp_path)
    lines = run.stdout.strip().splitlines()
    assert "0000_ankle_boot.png Ankle boot" in lines
    assert (tmp_path / "lenet5.tflite.metadata.json").is_file() and (tmp_path / "lenet5_savedmodel").is_dir()
