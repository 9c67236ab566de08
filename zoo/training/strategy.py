"""tf.distribute strategies: auto | none | mirrored | multiworker (from TF_CONFIG).

auto: MultiWorkerMirroredStrategy when TF_CONFIG names a cluster, MirroredStrategy with 2+ GPUs,
else the default strategy. Every worker runs the same steps (collectives need all of them);
each writes the model directory it was given, so give each machine its own --out.
"""

from __future__ import annotations

import json
import os

from zoo.errors import UsageError

STRATEGIES = ("auto", "none", "mirrored", "multiworker")


def tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return {}
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UsageError(f"TF_CONFIG is not valid JSON ({exc}). See the README's two-machine example.") from None
    return config if isinstance(config, dict) else {}


def worker_info() -> tuple[int, int, bool]:
    """(index, number of workers, is_chief) from TF_CONFIG; (0, 1, True) without it."""
    config = tf_config()
    cluster = config.get("cluster", {})
    task = config.get("task", {})
    n = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    if not n:
        return 0, 1, True
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    chief = kind == "chief" or (kind == "worker" and index == 0 and not cluster.get("chief"))
    return index, n, chief


def resolve_strategy(name: str):
    """(tf.distribute.Strategy, resolved name)."""
    import tensorflow as tf

    if name not in STRATEGIES:
        raise UsageError(f"`strategy` must be one of {', '.join(STRATEGIES)}. Received: strategy={name!r}.")
    has_cluster = bool(tf_config().get("cluster"))
    if name == "auto":
        if has_cluster:
            name = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "none"
    if name == "multiworker":
        if not has_cluster:
            raise UsageError("--strategy multiworker needs TF_CONFIG with a cluster (see the README's "
                             "two-machine example). Received: TF_CONFIG is empty.")
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=600)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options), name
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(), name
    return tf.distribute.get_strategy(), name
