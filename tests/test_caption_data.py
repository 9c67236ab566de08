"""Captioning data: Flickr8k token file, CSV and COCO JSON read alike; bad input counted or named."""

import json
import sys
from pathlib import Path

import pytest

from zoo.tasks.captioning.data import read_captions, split
from zoo.errors import DataError, UsageError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from make_shapes_captions import make  # noqa: E402


@pytest.mark.parametrize("fmt", ["token", "csv", "coco"])
def test_three_formats_give_the_same_items(tmp_path, fmt):
    make(tmp_path / "ref", count=6, size=32, seed=3, fmt="token")
    make(tmp_path / fmt, count=6, size=32, seed=3, fmt=fmt)
    ref = read_captions(tmp_path / "ref")
    got = read_captions(tmp_path / fmt)
    assert [(p.name, caps) for p, caps in got.items] == [(p.name, caps) for p, caps in ref.items]
    assert got.summary["images"] == 6 and got.summary["captions"] == 12
    assert all(len(caps) == 2 for _, caps in got.items)


def test_generator_is_seeded(tmp_path):
    make(tmp_path / "a", count=4, size=32, seed=7)
    make(tmp_path / "b", count=4, size=32, seed=7)
    assert (tmp_path / "a/captions.txt").read_text() == (tmp_path / "b/captions.txt").read_text()
    assert (tmp_path / "a/images/00003.png").read_bytes() == (tmp_path / "b/images/00003.png").read_bytes()


def _folder(tmp_path, text: bytes, name="captions.txt", images=("a.png", "b.png", "c.png")):
    from PIL import Image

    (tmp_path / "images").mkdir(exist_ok=True)
    for image in images:
        Image.new("RGB", (8, 8), (200, 10, 10)).save(tmp_path / "images" / image)
    (tmp_path / name).write_bytes(text)
    return tmp_path


def test_bad_lines_missing_images_empty_captions_and_uncaptioned_images_are_counted(tmp_path):
    text = ("a.png#0\tA red square.\n"
            "a.png#1\t   \n"            # empty caption
            "ghost.png#0\ta ghost\n"     # names a missing image
            "ghost.png#1\tanother ghost\n"
            "no tab on this line\n"      # malformed
            "b.png#0\ta second image\n")
    data = _folder(tmp_path, text.encode())
    got = read_captions(data)
    assert [(p.name, caps) for p, caps in got.items] == [("a.png", ["A red square."]), ("b.png", ["a second image"])]
    s = got.summary
    assert (s["empty_captions"], s["missing_images"], s["captions_of_missing_images"], s["bad_lines"],
            s["images_without_captions"]) == (1, 1, 2, 1, 1)
    assert s["first_bad_lines"] == [5] and s["first_missing"] == ["ghost.png"]


def test_csv_with_header_and_commas_in_captions(tmp_path):
    data = _folder(tmp_path, b'image,caption\na.png,"a red, square"\nb.png,a dog, running\n', name="captions.csv")
    got = read_captions(data)
    assert [caps for _, caps in got.items] == [["a red, square"], ["a dog, running"]]


def test_non_utf8_file_names_the_line(tmp_path):
    data = _folder(tmp_path, "a.png#0\ta red square\nb.png#0\tun caf\u00e9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"line 2 is not UTF-8"):
        read_captions(data)


def test_utf8_bom_is_fine(tmp_path):
    data = _folder(tmp_path, "\ufeffa.png#0\ta red square\n".encode("utf-8"))
    assert read_captions(data).items[0][1] == ["a red square"]


def test_coco_annotations_for_unknown_images_are_bad_lines(tmp_path):
    doc = {"images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"}],
           "annotations": [{"image_id": 1, "caption": "a red square"}, {"image_id": 9, "caption": "x"}]}
    data = _folder(tmp_path, json.dumps(doc).encode(), name="captions.json")
    got = read_captions(data)
    assert got.summary["bad_lines"] == 1 and got.summary["images_without_captions"] == 2  # b.png and c.png


def test_folder_errors(tmp_path):
    with pytest.raises(UsageError, match="must be a folder"):
        read_captions(tmp_path / "nope")
    (tmp_path / "images").mkdir()
    with pytest.raises(UsageError, match="captions file"):
        read_captions(tmp_path)
    data = _folder(tmp_path, b"ghost.png#0\ta ghost\n")
    with pytest.raises(DataError, match="No caption .* names an image"):
        read_captions(data)


def test_split_is_by_image_and_seeded():
    items = [(f"{i}.png", [f"c{i}a", f"c{i}b"]) for i in range(20)]
    train, val = split(items, val_split=0.25, seed=1)
    assert len(val) == 5 and len(train) == 15
    assert not {p for p, _ in train} & {p for p, _ in val}
    assert split(items, val_split=0.25, seed=1) == (train, val)


def test_unreadable_images_are_skipped_and_reported(tmp_path):
    from zoo.tasks.captioning.data import load_images

    data = _folder(tmp_path, b"a.png#0\tred\nb.png#0\tred\n")
    (data / "images" / "b.png").write_bytes(b"not a png at all")
    items = read_captions(data).items
    images, kept, errors = load_images([p for p, _ in items], size=(16, 12))
    assert images.shape == (1, 16, 12, 3) and images.dtype.name == "uint8"
    assert kept == [0] and list(errors) == [str(data / "images" / "b.png")]
