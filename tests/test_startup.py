"""Start-up stays light: `zoo list`, `zoo info` and `zoo bench --help` import no TensorFlow.
(Timings are in the README and scripts/bench_forward.py --startup, not in timed tests.)"""

import subprocess
import sys

import pytest


def _heavy_modules_after(argv: list[str]) -> list[str]:
    code = ("import sys\nfrom zoo.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "print([m for m in ('tensorflow', 'keras', 'matplotlib', 'numpy') if m in sys.modules])" % (argv,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return eval(out.stdout.strip().splitlines()[-1])  # a list literal printed by the probe above


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["list", "--json"], ["bench", "--help"]])
def test_light_commands_import_no_tensorflow(argv):
    heavy = _heavy_modules_after(argv)
    assert "tensorflow" not in heavy and "keras" not in heavy and "matplotlib" not in heavy
