"""zoo.data.images: the shared decoder on a corpus of awkward files (helpers.make_corpus), list_images, resizing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from zoo.data.images import IMAGE_EXTENSIONS, decode_image, list_images, resize_for_model
from zoo.errors import ImageError

from helpers import BLUE, RED, halves, make_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("awkward"))


def test_corpus_decodes_or_fails_with_one_line(corpus):
    for path, ok in corpus:
        if ok:
            image = decode_image(path)
            assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, path.name
        else:
            with pytest.raises(ImageError) as info:
                decode_image(path)
            message = str(info.value)
            assert "\n" not in message and message, path.name
            assert str(path) in message


def test_bomb_is_refused_from_header_and_small_on_disk(corpus):
    bomb = dict((p.name, p) for p, _ in corpus)["gigapixel.png"]
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(ImageError, match="over the limit"):
        decode_image(bomb)


def test_pixel_limit_is_configurable(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    Image.new("RGB", (100, 100)).save(path)
    assert decode_image(path).shape == (100, 100, 3)
    with pytest.raises(ImageError, match="10,000 pixels is over the limit of 9,999"):
        decode_image(path, max_pixels=9_999)
    monkeypatch.setenv("ZOO_MAX_PIXELS", "5000")
    with pytest.raises(ImageError, match="limit of 5,000"):
        decode_image(path)
    assert decode_image(path, max_pixels=None).shape == (100, 100, 3)
    monkeypatch.setenv("ZOO_MAX_PIXELS", "0")
    assert decode_image(path).shape == (100, 100, 3)


def test_exif_orientation_is_applied(corpus):
    path = dict((p.name, p) for p, _ in corpus)["exif_rotated.jpg"]
    image = decode_image(path).astype(int)
    assert image.shape == (40, 20, 3)  # stored 40 wide x 20 high, displayed rotated
    # rotating clockwise puts the stored left (red) half on top
    assert image[5, 10, 0] > 200 and image[5, 10, 2] < 60
    assert image[35, 10, 2] > 200 and image[35, 10, 0] < 60


def test_transparency_is_composited_on_white_or_black(corpus):
    by = dict((p.name, p) for p, _ in corpus)
    rgba = decode_image(by["rgba.png"])
    assert tuple(rgba[0, 0]) == (200, 0, 0)
    assert tuple(rgba[7, 0]) == (255, 255, 255)
    assert tuple(decode_image(by["rgba.png"], background="black")[7, 0]) == (0, 0, 0)
    pal = decode_image(by["palette.png"])
    assert tuple(pal[0, 0]) == (10, 200, 30)
    assert tuple(pal[7, 7]) == (255, 255, 255)


def test_16bit_cmyk_gif_first_frame(corpus):
    by = dict((p.name, p) for p, _ in corpus)
    g16 = decode_image(by["gray16.png"])
    assert tuple(g16[0, 0]) == (255, 255, 255) and tuple(g16[5, 5]) == (128, 128, 128)
    assert decode_image(by["gray16.png"], channels=1)[5, 5, 0] == 128
    cyan = decode_image(by["cmyk.jpg"]).astype(int)[4, 4]
    assert cyan[0] < 40 and cyan[1] > 215 and cyan[2] > 215
    assert tuple(decode_image(by["animated.gif"])[0, 0]) == RED


def test_grayscale_and_bytes_input(corpus):
    by = dict((p.name, p) for p, _ in corpus)
    gray = decode_image(by["image.bmp"], channels=1)
    assert gray.shape == (16, 16, 1)
    expected = np.asarray(halves((16, 16)).convert("L"))[:, :, None]
    np.testing.assert_array_equal(gray, expected)
    np.testing.assert_array_equal(decode_image(by["image.bmp"].read_bytes()), np.asarray(halves((16, 16))))
    with pytest.raises(ImageError, match="empty"):
        decode_image(b"")
    with pytest.raises(ValueError, match="channels"):
        decode_image(by["image.bmp"], channels=4)


def test_list_images(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "x.jpg").mkdir()
    for name in ["b.png", "A.JPG", "notes.txt", ".hidden.jpg", "sub/c.webp"]:
        Image.new("RGB", (2, 2)).save(tmp_path / name, format="PNG") if name.endswith(("g", "G", "p")) else (tmp_path / name).write_text("x")
    assert [p.name for p in list_images(tmp_path)] == ["A.JPG", "b.png"]
    assert [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, recursive=True)] == ["A.JPG", "b.png", "sub/c.webp"]
    assert ".jpg" in IMAGE_EXTENSIONS and all(ext == ext.lower() for ext in IMAGE_EXTENSIONS)


def test_resize_policies():
    # 40 wide x 20 high: red left, blue right; a green band at the horizontal centre
    image = np.asarray(halves()).copy()
    image[:, 18:22] = (0, 255, 0)
    squash, info = resize_for_model(image, (10, 10), resize="squash")
    assert squash.shape == (10, 10, 3) and info["orig_size"] == (20, 40)
    crop, info = resize_for_model(image, (10, 10), resize="crop", crop_pct=1.0, interpolation="nearest")
    # the short side becomes 10 (width 20), the centre 10 columns are kept: red|green|blue
    assert crop.shape == (10, 10, 3) and info["crop"] == (0, 5)
    assert tuple(crop[5, 0]) == RED and tuple(crop[5, 9]) == BLUE and tuple(crop[5, 5]) == (0, 255, 0)
    box, info = resize_for_model(image, (10, 10), resize="letterbox", interpolation="nearest")
    assert info["pad"] == (2, 0) and info["scale"] == (0.25, 0.25)  # 20x40 -> 5x10, centred in 10 rows
    assert tuple(box[0, 0]) == (114, 114, 114) and tuple(box[5, 0]) == RED
    gray, _ = resize_for_model(image[:, :, :1], (8, 8))
    assert gray.shape == (8, 8, 1)
    with pytest.raises(ValueError, match="resize"):
        resize_for_model(image, (8, 8), resize="stretch")
