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
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
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


def test_finetune_says_when_tensorflow_came_first(tmp_path):
    """`import keras` before `import zoo` (isort's order) leaves TensorFlow's choice in place; where that
    choice is "off", finetune says so at the start, with what to do. Where TensorFlow enabled oneDNN
    itself (AVX-512 VNNI/AMX CPUs), there is nothing to say."""
    from helpers import write_colours

    data = write_colours(tmp_path / "data", per_class=8, size=32)
    code = (f"import keras\nimport zoo\nfrom zoo.tf_settings import onednn_enabled\n"
            f"zoo.finetune('lenet5', {str(data)!r}, out={str(tmp_path / 'run')!r}, epochs=1, weights=None, verbose=1, overwrite=True)\n"
            f"print('onednn', onednn_enabled())")
    out = _probe(code)
    said = "oneDNN CPU kernels are off" in " ".join(out)
    assert out[-2:] in (["onednn", "True"], ["onednn", "False"])
    assert said is (out[-1] == "False")
    out = _probe(code, TF_ENABLE_ONEDNN_OPTS="0")  # the user chose: nothing to say
    assert out[-2:] == ["onednn", "False"] and "oneDNN CPU kernels are off" not in " ".join(out)
