"""Memory under load: predict streams in bounded memory, and fine-tuning keeps a flat RSS across epochs.

The full-size check is scripts/load_predict.py (10,000 files; README "Reliability and security");
these are the CI-sized versions: 2,000 files, and a tiny fine-tune of several epochs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "scripts"))
sys.path.insert(0, str(Path(__file__).parent))
from load_predict import rss_mb, write_images  # noqa: E402

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="RSS is read from /proc (Linux)")


@pytest.mark.slow
def test_predict_over_2000_files_keeps_rss_flat_after_warm_up(tmp_path):
    from zoo.inference import iter_predict

    source = write_images(tmp_path / "images", 2000, broken_every=50)
    rss, ok, failed = {}, 0, 0
    for n, record in enumerate(iter_predict(str(source), model="lenet5", weights="fashion_mnist", top_k=1,
                                            batch_size=32), 1):
        ok += record["ok"]
        failed += not record["ok"]
        if n % 100 == 0:
            rss[n] = rss_mb()
    assert (ok, failed) == (1960, 40)  # every input gives one record, broken files included
    after_warm_up = [v for n, v in rss.items() if n >= 400]
    growth = max(after_warm_up) - after_warm_up[0]
    # a leak of 10 KB per image (a kept decoded array, a retrace per batch) would be 16 MB here
    assert growth < 12, f"RSS grew {growth:.1f} MB over 1,600 images: {rss}"


@pytest.mark.slow
def test_finetune_rss_per_epoch_is_bounded(tmp_path, monkeypatch):
    """RSS recorded at every epoch's checkpoint (the trainer's per-epoch write) of a 7-epoch run."""
    from helpers import write_digits

    import zoo
    from zoo.training import checkpoint as ck

    data = write_digits(tmp_path / "data", per_class=16, classes=range(3))
    per_epoch: list[float] = []
    real = ck.write_epoch

    def recording(out, state, *args, **kwargs):
        per_epoch.append(rss_mb())
        return real(out, state, *args, **kwargs)

    monkeypatch.setattr(ck, "write_epoch", recording)
    zoo.finetune("lenet5", data, out=tmp_path / "out", epochs=7, weights="none", batch_size=8, augment="none",
                 early_stopping=None, verbose=0, cache_features="off")
    assert len(per_epoch) == 7, per_epoch
    print("RSS per epoch (MB):", [round(v, 1) for v in per_epoch])  # shown with pytest -s
    growth = max(per_epoch[2:]) - per_epoch[2]  # after two epochs of graph building and allocator warm-up
    assert growth < 40, f"RSS per epoch (MB): {[round(v) for v in per_epoch]}"
