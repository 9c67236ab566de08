"""Show, Attend and Tell learns to caption and to look: from scratch, through zoo.finetune, on held-out scenes.

A small version of scripts/caption_attention.py (which does 400 images at 96 px on resnet18):
240 images at 48 px on the tiny encoder (attending over its s8 map, 6 x 6 cells), 3 colours x 2
shapes x 2 relations, 25 epochs: about a minute of CPU. Two bars a model that
does not look cannot pass: BLEU-4 of its greedy captions clearly above the best constant caption's,
and the pointing score (is a shape word's attention peak inside an object of that shape?) clearly
above the hit rate of random points.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


@pytest.mark.slow
def test_attention_captioner_learns_shapes_and_points_at_them(tmp_path):
    from caption_attention import run

    result = run(tmp_path, archs=("show_attend_tell",), count=240, held_out=40, size=48, backbone="tiny", epochs=25,
                 lr=3e-3, batch_size=32, seed=0, verbose=0, shape_options={"colours": 3, "shapes": 2, "relations": 2},
                 options={"show_attend_tell": {"feature": "s8", "tiny_width": 16, "attention_dim": 64, "beam_size": 1}})
    model, constant = result["show_attend_tell"], result["constant"]
    assert constant["exact"] <= 0.1 and constant["bleu4"] < 0.6, result  # no trivially constant test set
    assert model["beam1"]["bleu4"] >= constant["bleu4"] + 0.05, result
    pointing = model["pointing"]
    assert pointing["shape_words"] >= 40, result
    assert pointing["score"] >= 1.5 * pointing["chance"] and pointing["score"] >= pointing["chance"] + 0.05, result
