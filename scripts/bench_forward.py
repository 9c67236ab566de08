"""Forward throughput side by side in ONE run: zoo vs keras.applications (and torchvision).

Every contender is called in the same process (torchvision in a worker process of a torch
venv, driven call by call over a pipe), interleaved round by round in rotating order, so load
from other processes hits all of them alike; each figure is the median of the rounds, and the
speedup is the median of the per-round ratios.

    zoo          zoo.build(name) -> zoo.inference_model -> one tf.function (fixed signature), as
                 `zoo predict` / `zoo bench` run it; zoo's models also carry their preprocessing.
                 For resnet50 this is style="keras" (v1), the same network as keras.applications'.
    zoo_tv       resnet50 in zoo's default torchvision style (v1.5), the same network as
                 torchvision's: the speedup over torchvision is measured against this one.
    zoo_plain    the same zoo model without inference_model, same runner (--variants).
    zoo_xla      the inference copy under tf.function(jit_compile=True) (--variants).
    zoo_predict  the inference copy through model.predict (--variants).
    keras        keras.applications model (weights=None) through the same tf.function runner.
    keras_predict  the same keras model through model.predict (what most Keras users call).
    torchvision  torchvision.models.<name>(weights=None).eval() under torch.inference_mode(),
                 with the same thread count as TensorFlow's intra-op pool.

    /work/venv/bin/python scripts/bench_forward.py                       # README table
    /work/venv/bin/python scripts/bench_forward.py --models resnet50 --batch-sizes 32 --repeats 15 --variants zoo,zoo_plain,zoo_xla,keras
    /work/venv/bin/python scripts/bench_forward.py --torch-python /work/torchvenv/bin/python
    /work/venv/bin/python scripts/bench_forward.py --startup             # zoo --help / zoo list, median of 5
    /work/venv/bin/python scripts/bench_forward.py --extras              # fine-tune and predict-from-files rows

The torch venv: python3 -m venv /work/torchvenv && /work/torchvenv/bin/pip install torch torchvision
(the script is self-contained there: the worker imports neither zoo nor TensorFlow).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import zoo  # noqa: E402,F401  before TensorFlow: zoo's TensorFlow settings (zoo.tf_settings) apply only then

KERAS_APPS = {"resnet50": "ResNet50", "densenet121": "DenseNet121", "vgg16": "VGG16"}
TORCHVISION = {"resnet50": "resnet50", "densenet121": "densenet121", "vgg16": "vgg16", "googlenet": "googlenet"}
DEFAULT_MODELS = ["resnet50", "densenet121", "vgg16", "googlenet", "yolo_lite"]
# The zoo network that is the same architecture as keras.applications' (ResNet-50 v1, stride in the
# 1x1), and the one that is torchvision's (v1.5, zoo's default): each pair compares like with like.
ZOO_AS_KERAS = {"resnet50": {"style": "keras"}}


# --------------------------------------------------------------------------- torch worker


def torch_worker(threads: int) -> None:
    """Line protocol on stdin/stdout: {"model", "batch"} -> {"ready"}; {"run": 1} -> {"s": secs}."""
    import torch
    import torchvision

    torch.set_num_threads(threads)
    model = x = None
    print(json.dumps({"torch": torch.__version__, "torchvision": torchvision.__version__,
                      "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        msg = json.loads(line)
        if "model" in msg:
            kwargs = {"aux_logits": False, "init_weights": False} if msg["model"] == "googlenet" else {}
            model = getattr(torchvision.models, msg["model"])(weights=None, **kwargs).eval()
            x = torch.rand(msg["batch"], 3, 224, 224)
            with torch.inference_mode():
                model(x)
            print(json.dumps({"ready": True}), flush=True)
        elif "run" in msg:
            with torch.inference_mode():
                c0, t0 = time.process_time(), time.perf_counter()
                model(x)
                print(json.dumps({"s": time.perf_counter() - t0, "cpu": time.process_time() - c0}), flush=True)
        else:
            return


class TorchContender:
    def __init__(self, python: str, threads: int):
        # Passive OpenMP waiting: on a shared machine spinning threads stall each other and make
        # torch several times slower, which would flatter zoo. On a quiet machine it changes little.
        env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
        self.proc = subprocess.Popen([python, os.path.abspath(__file__), "--torch-worker", "--threads", str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.info = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the torch worker stopped")
        return json.loads(line)

    def prepare(self, model: str, batch: int) -> None:
        self.proc.stdin.write(json.dumps({"model": model, "batch": batch}) + "\n")
        self.proc.stdin.flush()
        self._read()

    def __call__(self) -> tuple[float, float]:
        self.proc.stdin.write('{"run": 1}\n')
        self.proc.stdin.flush()
        reply = self._read()
        return reply["s"], reply["cpu"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write('{"quit": 1}\n')
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


# --------------------------------------------------------------------------- TF contenders


def _timed(fn):
    """(wall seconds, CPU seconds of this process) of one call. CPU time counts the work whatever
    else runs on the machine; wall time is what a user waits."""
    def call():
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        return time.perf_counter() - t0, time.process_time() - c0

    return call


def tf_contenders(name: str, batch: int, *, variants: list[str]) -> dict:
    import numpy as np
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (batch, 224, 224, 3)).astype("float32"))

    def runner(model, jit_compile=False):
        fn = tf.function(lambda t: model(t, training=False), input_signature=[tf.TensorSpec(x.shape, tf.float32)],
                         jit_compile=jit_compile)
        return _timed(lambda: [t.numpy() for t in tf.nest.flatten(fn(x))])

    def predict(model):
        xn = x.numpy()
        return _timed(lambda: model.predict(xn, batch_size=batch, verbose=0))

    out = {}
    built = zoo.build(name, **ZOO_AS_KERAS.get(name, {}))
    fast = zoo.inference_model(built)
    out["zoo"] = runner(fast)
    if name in ZOO_AS_KERAS and "torchvision" in variants:
        out["zoo_tv"] = runner(zoo.inference_model(zoo.build(name)))
    if "zoo_plain" in variants:
        out["zoo_plain"] = runner(built)
    if "zoo_xla" in variants:
        out["zoo_xla"] = runner(fast, jit_compile=True)
    if "zoo_predict" in variants:
        out["zoo_predict"] = predict(fast)
    if name in KERAS_APPS:
        import keras

        ka = getattr(keras.applications, KERAS_APPS[name])(weights=None)
        if "keras" in variants:
            out["keras"] = runner(ka)
        if "keras_predict" in variants:
            out["keras_predict"] = predict(ka)
    return out


def measure(contenders: dict, *, rounds: int, warmup: int = 2) -> dict[str, list[tuple[float, float]]]:
    for call in contenders.values():
        for _ in range(warmup):
            call()
    names = list(contenders)
    times: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:  # rotate who goes first
            times[n].append(contenders[n]())
    return times


def summarise(name: str, batch: int, times: dict[str, list[tuple[float, float]]]) -> dict:
    """img/s from the median wall time; cpu_ms = median CPU milliseconds per image; speedups are
    medians of per-round ratios (wall), and of CPU time per image (cpu_speedup)."""
    row = {"model": name, "batch": batch, "rounds": len(times["zoo"])}
    for n, ts in times.items():
        row[f"{n}_img_s"] = round(batch / statistics.median(w for w, _ in ts), 2)
        row[f"{n}_cpu_ms"] = round(1000 * statistics.median(c for _, c in ts) / batch, 1)
    for n, ts in times.items():
        if n in ("zoo", "zoo_tv"):
            continue
        ref = "zoo_tv" if n == "torchvision" and "zoo_tv" in times else "zoo"
        row[f"speedup_vs_{n}"] = round(statistics.median(o[0] / z[0] for z, o in zip(times[ref], ts)), 3)
        row[f"cpu_speedup_vs_{n}"] = round(row[f"{n}_cpu_ms"] / row[f"{ref}_cpu_ms"], 3)
    return row


# --------------------------------------------------------------------------- start-up and extras


def startup(repeats: int = 5) -> dict:
    exe = shutil.which("zoo") or os.path.join(os.path.dirname(sys.executable), "zoo")
    out = {}
    for args in (["--help"], ["list"]):
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run([exe, *args], capture_output=True, check=False)
            ts.append(time.perf_counter() - t0)
        out["zoo " + " ".join(args)] = round(statistics.median(ts), 3)
    return out


def extras(models: list[str]) -> list[dict]:

    rows = []
    for name in models:
        for mode, batch in (("train", 16), ("predict", None)):
            r = zoo.bench(name, mode=mode, batch_size=batch, steps=4, warmup=1)
            rows.append({"model": name, "mode": mode, "batch": r["batch_size"], "img_s": r["images_per_s"],
                         "peak_fraction": r["peak_fraction"]})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    """Markdown: img/s (median wall) per contender, then zoo's speedups as wall / CPU-time ratios."""
    cols = ["zoo", "zoo_tv", "zoo_plain", "zoo_xla", "zoo_predict", "keras", "keras_predict", "torchvision"]
    present = [c for c in cols if any(f"{c}_img_s" in r for r in rows)]
    versus = [c for c in ("keras", "keras_predict", "torchvision") if c in present]
    head = ("| model | batch | zoo CPU ms/img | " + " | ".join(f"{c} img/s" for c in present) + " | "
            + " | ".join(f"zoo vs {c} (wall / CPU)" for c in versus) + " |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        cells = [str(r.get(f"{c}_img_s", "—")) for c in present]
        ratios = []
        for c in versus:
            w, cpu = r.get(f"speedup_vs_{c}"), r.get(f"cpu_speedup_vs_{c}")
            ratios.append(f"{w:.2f}x / {cpu:.2f}x" if w else "—")
        lines.append(f"| {r['model']} | {r['batch']} | {r['zoo_cpu_ms']} | " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS))
    ap.add_argument("--batch-sizes", default="1,32")
    ap.add_argument("--repeats", type=int, default=7, help="rounds at batch 32 (4x as many at batch 1)")
    ap.add_argument("--variants", default="zoo,keras,keras_predict",
                    help="TF contenders: zoo, zoo_plain (no inference_model), zoo_xla, zoo_predict, keras, keras_predict")
    ap.add_argument("--torch-python", default=None,
                    help="python of a venv with torch+torchvision (default: this one if it has them, "
                         "else /work/torchvenv/bin/python if present)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--startup", action="store_true", help="only time zoo --help and zoo list")
    ap.add_argument("--extras", action="store_true", help="also fine-tune and predict-from-files images/s")
    ap.add_argument("--json", default=None, help="write all results here")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=0,
                    help="intra-op threads for TensorFlow and torch alike (default: TensorFlow's, all cores); "
                         "1 is the fair choice on a crowded machine, where barrier waits punish multi-threading")
    args = ap.parse_args()
    if args.torch_worker:
        torch_worker(args.threads)
        return
    if args.startup:
        print(json.dumps(startup()))
        return

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1 if args.threads == 1 else 0)
    threads = tf.config.threading.get_intra_op_parallelism_threads() or len(os.sched_getaffinity(0))
    torch = None
    if not args.no_torch:
        python = args.torch_python
        if python is None:
            import importlib.util

            if importlib.util.find_spec("torch") and importlib.util.find_spec("torchvision"):
                python = sys.executable
            elif os.path.exists("/work/torchvenv/bin/python"):
                python = "/work/torchvenv/bin/python"
        if python:
            torch = TorchContender(python, threads)
            print(f"torchvision side: {torch.info} (TensorFlow {tf.__version__}, intra-op threads {threads})", flush=True)

    rows = []
    import keras

    try:
        for name in args.models.split(","):
            for batch in (int(b) for b in args.batch_sizes.split(",")):
                contenders = tf_contenders(name, batch, variants=args.variants.split(",") + ["torchvision"] * (torch is not None))
                if torch is not None and name in TORCHVISION:
                    torch.prepare(TORCHVISION[name], batch)
                    contenders["torchvision"] = torch
                else:
                    contenders.pop("zoo_tv", None)
                rounds = args.repeats * (4 if batch == 1 else 1)
                rows.append(summarise(name, batch, measure(contenders, rounds=rounds)))
                print(json.dumps(rows[-1]), flush=True)
                del contenders
                keras.backend.clear_session()
    finally:
        if torch is not None:
            torch.close()
    result = {"forward": rows, "threads": threads, "tensorflow": tf.__version__,
              "torch": torch.info if torch else None, "startup": startup()}
    if args.extras:
        result["extras"] = extras(["resnet50", "yolo_lite"])
    print(table(rows))
    print(json.dumps(result["startup"]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
