"""Make the torch fixtures of tests/test_pretrained_torch.py (run with torch + torchvision installed).

    python3 -m venv /work/torchvenv
    /work/torchvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 safetensors numpy
    /work/torchvenv/bin/python scripts/make_torch_fixtures.py

For each case, torchvision's own model class (random weights from tests/torch_synth.py, which the
tests regenerate without torch) runs on a synthetic batch in eval mode; we record its state-dict
names and shapes (<case>.json), the batch in NHWC (<case>_input.npy) and torchvision's output
(<case>_output.npy). One small model is also written as real files (.safetensors and .pth) to
test the file readers themselves. Versions go to tests/fixtures/torch/VERSIONS.json.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision
from safetensors.torch import save_file
from torchvision import models as M

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "fixtures" / "torch"
sys.path.insert(0, str(REPO / "tests"))
from torch_synth import synth_input, synth_state_dict  # noqa: E402

# case: (model factory, input NCHW, output: "logits" or "features")
CASES = {
    "resnet50": (lambda: M.resnet50(weights=None), (2, 3, 64, 64), "logits"),
    "densenet121": (lambda: M.densenet121(weights=None), (2, 3, 64, 64), "logits"),
    "googlenet": (lambda: M.googlenet(weights=None, aux_logits=False, transform_input=False, init_weights=False),
                  (2, 3, 64, 64), "logits"),
    "alexnet": (lambda: M.alexnet(weights=None), (2, 3, 224, 224), "logits"),
    "vgg11_bn_features": (lambda: M.vgg11_bn(weights=None), (2, 3, 64, 64), "features"),
}


def fill(model: torch.nn.Module, *, prefix: str = "") -> dict[str, list[int]]:
    sd = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    if prefix:
        sd = {k: v for k, v in sd.items() if k.startswith(prefix)}
    shapes = {k: list(v.shape) for k, v in sd.items()}
    synth = synth_state_dict(shapes)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in synth.items()}, strict=not prefix)
    return shapes


@torch.no_grad()
def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for case, (factory, shape, kind) in CASES.items():
        model = factory().eval()
        shapes = fill(model, prefix="features." if kind == "features" else "")
        x = synth_input(shape)
        out = model.features(torch.from_numpy(x)) if kind == "features" else model(torch.from_numpy(x))
        out = out.numpy()
        if out.ndim == 4:
            out = out.transpose(0, 2, 3, 1)  # NCHW -> NHWC as zoo returns it
        (OUT / f"{case}.json").write_text(json.dumps(shapes, indent=0, sort_keys=True) + "\n")
        np.save(OUT / f"{case}_input.npy", x.transpose(0, 2, 3, 1))
        np.save(OUT / f"{case}_output.npy", out.astype(np.float32))
        print(case, out.shape, float(np.abs(out).max()))

    # Real files from torch itself: a DenseNet with one layer per block (torchvision's DenseNet class).
    tiny = M.DenseNet(growth_rate=32, block_config=(1, 1, 1, 1), num_init_features=64, num_classes=10).eval()
    for module in tiny.modules():
        if isinstance(module, torch.nn.BatchNorm2d):  # non-trivial statistics, as a trained net has
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.8, 1.2)
            module.bias.data.uniform_(-0.1, 0.1)
    sd = {k: v.contiguous() for k, v in tiny.state_dict().items()}
    save_file(sd, str(OUT / "densenet_tiny.safetensors"))
    torch.save(sd, OUT / "densenet_tiny.pth")
    x = synth_input((2, 3, 64, 64), seed=7)
    np.save(OUT / "densenet_tiny_input.npy", x.transpose(0, 2, 3, 1))
    np.save(OUT / "densenet_tiny_output.npy", tiny(torch.from_numpy(x)).numpy().astype(np.float32))
    versions = {"torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": np.__version__,
                "python": platform.python_version()}
    (OUT / "VERSIONS.json").write_text(json.dumps(versions, indent=2) + "\n")
    print(versions)


if __name__ == "__main__":
    main()
