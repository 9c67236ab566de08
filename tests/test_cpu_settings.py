"""zoo turns on TensorFlow's oneDNN CPU kernels before TensorFlow loads, unless the user chose.

TensorFlow enables them by itself only on CPUs with AVX-512 VNNI/BF16 or AMX; on an AVX2 CPU its
own kernels compute a convolution's input gradient on 1x1 and 2x2 maps ~40x slower, so ResNet-18 at
32 px trained at 32 instead of 145 images/s (README, "CPU settings"). Each probe is a fresh process:
the switch is read once, when TensorFlow is first imported.
"""

import os
import subprocess
import sys

_PROBE = ("import zoo, sys\nfrom tensorflow.python.util import _pywrap_util_port as port\n"
          "import os\nprint(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), port.IsMklEnabled())")


def _probe(code: str, **env_overrides) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env.update(env_overrides)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return out.stdout.split()


def test_import_zoo_turns_on_onednn():
    assert _probe(_PROBE) == ["1", "True"]


def test_user_choice_wins():
    assert _probe(_PROBE, TF_ENABLE_ONEDNN_OPTS="0") == ["0", "False"]


def test_cli_process_has_onednn_on():
    """The `zoo` command imports zoo before TensorFlow, so every command gets the setting."""
    code = ("from zoo.cli import main\nimport os, sys\n"
            "from tensorflow.python.util import _pywrap_util_port as port\nprint(port.IsMklEnabled())")
    assert _probe(code) == ["True"]
