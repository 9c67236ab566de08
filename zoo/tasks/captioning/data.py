"""Captioning data: a folder with `images/` and a captions file, several captions per image.

Captions files (found in DATA, format told by content):
    Flickr8k token file   `1000268201_693b08cb0e.jpg#0<TAB>A child in a pink dress ...`
    CSV                   `image,caption` (a header row `image,caption` is optional; Kaggle's
                          Flickr8k `captions.txt` is this), one caption per row
    COCO captions JSON    {"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}
Names are relative to `images/` (also `Images/`, `Flicker8k_Dataset/`, or DATA itself).

Bad input is counted, never fatal for one line: captions naming missing images, empty captions,
malformed lines, images without captions; a file that is not UTF-8 is an error naming the line.
`read_captions(data)` returns a CaptionSet: items [(image path, [captions])] in file order plus
a summary of those counts. `load_images` decodes them once; `caption_table` and `per_caption`
make the training pipeline.
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import DataError, UsageError

CAPTION_FILES = ("captions.txt", "captions.csv", "captions.json", "Flickr8k.token.txt", "results_20130124.token",
                 "captions_train2017.json", "captions_val2017.json", "captions_train2014.json", "captions_val2014.json")
IMAGE_DIRS = ("images", "Images", "Flicker8k_Dataset", "Flickr8k_Dataset", "flickr30k_images")


@dataclass
class CaptionSet:
    items: list[tuple[Path, list[str]]]  # (image path, its non-empty captions), in file order
    summary: dict[str, Any] = field(default_factory=dict)


def find_captions_file(data: Path) -> Path:
    for name in CAPTION_FILES:
        if (data / name).is_file():
            return data / name
    found = sorted(p for p in data.iterdir() if p.is_file() and p.suffix.lower() in (".txt", ".csv", ".json", ".token")
                   and not p.name.startswith("."))
    if len(found) == 1:
        return found[0]
    names = ", ".join(p.name for p in found) or "none"
    raise UsageError(f"{data} needs one captions file (captions.txt, captions.csv or a COCO captions .json); "
                     f"found: {names}. Name it captions.txt / captions.csv / captions.json.")


def find_image_dir(data: Path) -> Path:
    for name in IMAGE_DIRS:
        if (data / name).is_dir():
            return data / name
    return data


def _text(path: Path) -> list[str]:
    """The file's lines, decoded as UTF-8 (a BOM is fine); other encodings are an error naming the line."""
    raw = path.read_bytes()
    lines = raw.splitlines()
    out = []
    for number, line in enumerate(lines, 1):
        try:
            text = line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{path.name} line {number} is not UTF-8 ({exc.reason} at byte {exc.start}). "
                            f"Save the captions file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`).") from None
        out.append(text)
    return out


def _parse_token(lines: list[str], counts: dict) -> list[tuple[str, str, int]]:
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        name, sep, caption = line.partition("\t")
        if not sep:
            counts["bad_lines"].append(number)
            continue
        rows.append((name.split("#", 1)[0].strip(), caption, number))
    return rows


def _parse_csv(lines: list[str], counts: dict) -> list[tuple[str, str, int]]:
    rows = []
    reader = csv.reader(io.StringIO("\n".join(lines)))
    for number, row in enumerate(_csv_rows(reader), 1):
        if not row or not "".join(row).strip():
            continue
        if number == 1 and [c.strip().lower() for c in row[:2]] in (["image", "caption"], ["path", "caption"],
                                                                    ["file_name", "caption"], ["filename", "caption"]):
            continue
        if len(row) < 2:
            counts["bad_lines"].append(number)
            continue
        # A caption with unquoted commas spans several cells: join them back.
        rows.append((row[0].strip(), ",".join(row[1:]), number))
    return rows


def _csv_rows(reader):
    """The reader's rows; a field past csv's size limit (131,072 characters) is one DataError line."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"captions CSV line {reader.line_num} cannot be read ({exc}). Expected lines "
                            f"`image,caption` with captions of ordinary length.") from None
        yield row


def _parse_coco(path: Path, counts: dict) -> list[tuple[str, str, int]]:
    try:
        doc = json.loads("\n".join(_text(path)))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path.name} is not valid JSON (line {exc.lineno}: {exc.msg}). "
                        f"Give a COCO captions file with 'images' and 'annotations'.") from None
    except RecursionError:  # nested deeper than Python's JSON parser goes
        raise DataError(f"{path.name} is nested too deeply to be a COCO captions file. "
                        f"Give a COCO captions file with 'images' and 'annotations'.") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) or not isinstance(doc.get("annotations"), list):
        raise DataError(f"{path.name} must be a COCO captions JSON object with 'images' and 'annotations' lists.")
    # ids are numbers or strings; a list or object there (unhashable) makes the row bad, not the run
    names = {img["id"]: img.get("file_name") for img in doc["images"]
             if isinstance(img, dict) and isinstance(img.get("id"), (int, str))}
    rows = []
    for number, ann in enumerate(doc["annotations"], 1):
        if (not isinstance(ann, dict) or not isinstance(ann.get("image_id"), (int, str)) or ann["image_id"] not in names
                or not isinstance(ann.get("caption", ""), str)):
            counts["bad_lines"].append(number)
            continue
        rows.append((str(names[ann["image_id"]]), ann.get("caption", ""), number))
    # Listed images without any annotation count as images without captions.
    counts["listed"] = [str(n) for n in names.values() if n]
    return rows


def read_captions(data: str | Path, *, captions_file: str | Path | None = None) -> CaptionSet:
    """Read DATA (see the module docstring) into image paths with their captions, and counts."""
    from zoo.data.images import list_images

    data = Path(data)
    if not data.is_dir():
        raise UsageError(f"Captioning DATA must be a folder with images/ and a captions file. Received: {data}.")
    path = Path(captions_file) if captions_file else find_captions_file(data)
    image_dir = find_image_dir(data)
    counts: dict[str, Any] = {"bad_lines": []}
    if path.suffix.lower() == ".json":
        rows = _parse_coco(path, counts)
    else:
        lines = _text(path)
        first = next((line for line in lines if line.strip()), "")
        rows = _parse_token(lines, counts) if "\t" in first else _parse_csv(lines, counts)
    by_image: dict[str, list[str]] = {}
    missing: set[str] = set()
    missing_captions = empty = 0
    for name, caption, _number in rows:
        image = image_dir / name
        if name in missing or not (name in by_image or image.is_file()):
            missing.add(name)
            missing_captions += 1
            continue
        captions = by_image.setdefault(name, [])
        if not caption.strip():
            empty += 1
            continue
        captions.append(" ".join(caption.split()))
    if not rows:
        where = f" (first bad line: {counts['bad_lines'][0]})" if counts["bad_lines"] else ""
        raise DataError(f"{path.name} holds no captions{where}. Expected `image#n<TAB>caption` lines, CSV "
                        f"`image,caption` rows, or COCO captions JSON.")
    on_disk = {p.relative_to(image_dir).as_posix() for p in list_images(image_dir, recursive=True)}
    without = sorted((on_disk | set(counts.get("listed", []))) - {n for n, c in by_image.items() if c} - missing)
    items = [(image_dir / name, caps) for name, caps in by_image.items() if caps]
    if not items:
        raise DataError(f"No caption in {path.name} names an image in {image_dir} ({len(missing)} named images are "
                        f"missing). Check that the names in the captions file match the files in {image_dir}.")
    summary = {
        "captions_file": path.name,
        "images": len(items),
        "captions": sum(len(c) for _, c in items),
        "missing_images": len(missing),
        "captions_of_missing_images": missing_captions,
        "empty_captions": empty,
        "bad_lines": len(counts["bad_lines"]),
        "images_without_captions": len(without),
    }
    if counts["bad_lines"]:
        summary["first_bad_lines"] = counts["bad_lines"][:5]
    if missing:
        summary["first_missing"] = sorted(missing)[:5]
    return CaptionSet(items, summary)


def split(items: list, *, val_split: float, seed: int) -> tuple[list, list]:
    """A seeded split by image (an image's captions never straddle train and validation)."""
    if not 0 <= val_split < 1:
        raise UsageError(f"`val_split` must be in [0, 1). Received: val_split={val_split!r}.")
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n_val = int(round(len(items) * val_split))
    if val_split > 0 and len(items) >= 2:
        n_val = min(max(n_val, 1), len(items) - 1)
    val_idx = set(order[:n_val])
    return [it for i, it in enumerate(items) if i not in val_idx], [it for i, it in enumerate(items) if i in val_idx]


def load_images(paths: list[Path], *, size: tuple[int, int], channels: int = 3, resize: str = "squash",
                interpolation: str = "bilinear", progress: bool = False):
    """Decode and resize images once (zoo.data.images, as predict does). Returns (uint8 array, kept
    indices, errors {path: reason}); unreadable images are skipped, not fatal."""
    import numpy as np

    from zoo.data.images import decode_image, resize_for_model
    from zoo.errors import ImageError

    arrays, kept, errors = [], [], {}
    for i, path in enumerate(_progress(paths, progress, "decoding images")):
        try:
            image = decode_image(path, channels=channels)
        except ImageError as exc:
            errors[str(path)] = str(exc)
            continue
        array, _ = resize_for_model(image, size, resize=resize, interpolation=interpolation)
        arrays.append(array)
        kept.append(i)
    out = np.stack(arrays) if arrays else np.zeros((0, *size, channels), np.uint8)
    return out, kept, errors


def _progress(items, show: bool, label: str):
    if not show or len(items) < 50:
        return items
    from rich.progress import track

    return track(items, description=label, transient=True)


def caption_table(items, vocab, *, max_length: int):
    """(image index per caption, token ids (n, max_length + 2)) for (image, captions) items: each
    image is stored once however many captions it has."""
    import numpy as np

    from zoo.tasks.captioning.text import encode

    index = np.array([i for i, (_, caps) in enumerate(items) for _ in caps], "int32")
    tokens = encode([c for _, caps in items for c in caps], vocab, max_length=max_length)
    return index, tokens


def per_caption(sources, index, tokens):
    """Unbatched ((image or features, tokens[:-1]), tokens[1:]) for teacher forcing: the decoder
    reads <start> w1 .. wn and predicts w1 .. wn <end>."""
    import tensorflow as tf

    table = tf.constant(sources)
    ds = tf.data.Dataset.from_tensor_slices((index, tokens))
    return ds.map(lambda i, t: ((tf.cast(tf.gather(table, i), tf.float32), t[:-1]), t[1:]),
                  num_parallel_calls=tf.data.AUTOTUNE)
