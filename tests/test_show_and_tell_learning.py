"""Show and Tell learns to caption: from scratch, through zoo.finetune, scored on held-out images.

A small version of scripts/caption_learning.py (which does 400 images at 96 px): 240 images at
48 px, 3 colours x 2 shapes x 2 relations. The bar is one a constant caption cannot pass: BLEU-4
well above the best constant caption's (about 0.50 here) and at least 20% of captions exactly
right (a constant caption gets under 2%).
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


@pytest.mark.slow
def test_captioner_learns_shapes_from_scratch(tmp_path):
    import keras

    from caption_learning import run

    keras.utils.set_random_seed(0)
    result = run(tmp_path, count=240, size=48, backbone="tiny", epochs=35, lr=3e-3, colours=3, shapes=2, relations=2,
                 verbose=0, task_options={"beam_size": 1})
    greedy, constant = result["beam1"], result["constant"]
    assert constant["exact"] <= 0.05 and constant["bleu4"] < 0.6, result  # no trivially constant test set
    assert greedy["bleu4"] >= max(0.65, constant["bleu4"] + 0.1), result
    assert greedy["exact"] >= 0.2, result
    assert result["beam3"]["bleu4"] >= constant["bleu4"] + 0.05, result
