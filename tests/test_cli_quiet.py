"""The CLI's stderr filter drops TensorFlow's native start-up lines and keeps everything else."""

import subprocess
import sys

PROBE = r'''
import os, sys
from zoo.cli import quiet
quiet.install()
os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
os.write(2, b"I0000 00:00:1795695228.196917   21691 port.cc:153] oneDNN custom operations are on.\n")
os.write(2, b"E0000 00:00:1795695251.913698   21691 cuda_platform.cc:52] failed call to cuInit\n")
os.write(2, b"a real native error line\n")
print("python stderr line", file=sys.stderr)
'''


def test_native_tensorflow_lines_are_dropped():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert "a real native error line" in out.stderr
    assert "python stderr line" in out.stderr
    assert "oneDNN" not in out.stderr and "cuInit" not in out.stderr and "absl::InitializeLog" not in out.stderr


def test_verbose_keeps_everything():
    import os

    env = {**os.environ, "ZOO_VERBOSE": "1"}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, env=env)
    assert "oneDNN" in out.stderr
