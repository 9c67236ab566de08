"""Detection datasets: Pascal VOC, COCO JSON and YOLO txt folders -> one list of samples.

    read_detection(root) -> DetectionSet(samples, labels, summary, format)

Layouts (detected in this order):
  VOC   root/Annotations/*.xml + root/JPEGImages/ (optional ImageSets/Main/{train,val}.txt)
  COCO  a *.json with "images", "annotations", "categories" in root or root/annotations/; images in
        root/images/, root/, or beside the JSON (file_name is relative to one of them)
  YOLO  root/images/** + root/labels/** (same relative stems; "class cx cy w h" normalised); class
        names from classes.txt, obj.names or the `names:` of data.yaml, else "0", "1", ...
Class names come from the data. Boxes are (x_min, y_min, x_max, y_max) in original pixels.
Boxes partly outside the image are clipped, empty or unknown-class boxes are skipped, and all of
it is counted in `summary`; a missing annotation or image file is a DataError naming the file.
XML is parsed with defusedxml, which refuses entity declarations (billion laughs, external files).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import DataError, UsageError

FORMATS = ("voc", "coco", "yolo")


@dataclass
class Sample:
    path: Path  # image file
    boxes: np.ndarray  # (N, 4) float32 xyxy in original pixels
    classes: np.ndarray  # (N,) int32 indices into DetectionSet.labels
    difficult: np.ndarray  # (N,) bool (VOC "difficult": ignored by the VOC07 AP)
    size: tuple[int, int] | None = None  # (height, width) when the annotation states it
    normalised: bool = False  # YOLO txt: boxes are fractions of the image size until loaded


@dataclass
class DetectionSet:
    samples: list[Sample]
    labels: list[str]
    format: str
    summary: dict[str, Any] = field(default_factory=dict)
    splits: dict[str, list[str]] = field(default_factory=dict)  # VOC ImageSets: split -> image stems


class _Counter:
    """Counts of what was clipped or skipped, for the summary."""

    def __init__(self):
        self.counts = {"boxes": 0, "clipped_boxes": 0, "skipped_boxes": 0, "unknown_class_boxes": 0,
                       "images_without_objects": 0, "skipped_images": 0}
        self.unknown: set[str] = set()

    def clean(self, boxes: list[list[float]], size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
        """(kept boxes (N, 4), kept mask) after clipping to the image and dropping empty boxes."""
        arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        ok = np.abs(arr) <= np.finfo(np.float32).max  # NaN, inf and values float32 cannot hold
        finite = ok.all(axis=1)
        arr = np.where(ok, arr, 0.0)
        if size is not None:
            h, w = size
            clipped = arr.copy()
            clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(0, w)
            clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, h)
            changed = (np.abs(clipped - arr) > 1e-6).any(axis=1)
            arr = clipped
        else:
            changed = np.zeros(len(arr), dtype=bool)
        keep = finite & (arr[:, 2] - arr[:, 0] > 0) & (arr[:, 3] - arr[:, 1] > 0)
        self.counts["clipped_boxes"] += int((changed & keep).sum())
        self.counts["skipped_boxes"] += int((~keep).sum())
        self.counts["boxes"] += int(keep.sum())
        return arr[keep].astype(np.float32), keep


def _sample(path: Path, boxes, classes, difficult, size, counter: _Counter) -> Sample:
    arr, keep = counter.clean(boxes, size)
    cls = np.asarray(classes, dtype=np.int32).reshape(-1)[keep]
    dif = np.asarray(difficult, dtype=bool).reshape(-1)[keep]
    if len(arr) == 0:
        counter.counts["images_without_objects"] += 1
    return Sample(path=path, boxes=arr, classes=cls, difficult=dif, size=size)


def detect_format(root: Path) -> str:
    if (root / "Annotations").is_dir():
        return "voc"
    if _coco_json(root) is not None:
        return "coco"
    if (root / "images").is_dir() and (root / "labels").is_dir():
        return "yolo"
    raise UsageError(f"{root} is not a detection dataset zoo can read. Expected Pascal VOC "
                     f"(Annotations/*.xml + JPEGImages/), COCO JSON (a *.json with images/annotations/categories) "
                     f"or YOLO txt (images/ + labels/).")


def read_detection(root: str | Path, *, labels: list[str] | None = None, format: str | None = None) -> DetectionSet:
    """Read a detection folder (VOC, COCO JSON or YOLO txt; see the module docstring).

    Args:
        root: the dataset folder.
        labels: class names to use (e.g. the training set's for a validation set); boxes of other
            classes are skipped and counted. None takes the names from the data.
        format: "voc", "coco" or "yolo"; None detects it.
    """
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"Detection data {str(root)!r} is not a folder. Give a VOC, COCO or YOLO dataset folder.")
    fmt = format or detect_format(root)
    if fmt not in FORMATS:
        raise UsageError(f"`format` must be one of {', '.join(FORMATS)}. Received: format={format!r}.")
    counter = _Counter()
    reader = {"voc": _read_voc, "coco": _read_coco, "yolo": _read_yolo}[fmt]
    try:
        dataset = reader(root, labels, counter)
    except UsageError:
        raise
    except (TypeError, ValueError, OverflowError, AttributeError, KeyError) as exc:  # hostile values the
        # readers did not foresee (a list where an id goes, ...) are still bad data, not a crash
        raise DataError(f"{root}: malformed {fmt} annotations ({type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:200]}). Fix the annotation files.") from None
    if not dataset.samples:
        raise UsageError(f"{root} holds no annotated images ({fmt} layout). Add images with annotations.")
    per_class = np.bincount(np.concatenate([s.classes for s in dataset.samples] or [np.zeros(0, int)]),
                            minlength=len(dataset.labels))
    dataset.summary = {"format": fmt, "images": len(dataset.samples), **counter.counts,
                       "per_class": {name: int(n) for name, n in zip(dataset.labels, per_class)}}
    if counter.unknown:
        dataset.summary["unknown_classes"] = sorted(counter.unknown)
    return dataset


# --------------------------------------------------------------------------- Pascal VOC


def _xml_root(path: Path):
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    try:
        return ElementTree.parse(str(path)).getroot()
    except DefusedXmlException as exc:
        raise DataError(f"{path}: refused unsafe XML ({type(exc).__name__}); VOC annotations need no entities.") from None
    except Exception as exc:  # ParseError, OSError
        raise DataError(f"{path}: not a valid VOC XML annotation ({exc}).") from None


def _text(node, tag: str, default: str | None = None) -> str | None:
    child = node.find(tag)
    return child.text.strip() if child is not None and child.text is not None else default


def _find_image(folder: Path, stem: str, filename: str | None) -> Path | None:
    from zoo.data.images import IMAGE_EXTENSIONS

    if filename:
        candidate = folder / Path(filename).name
        if candidate.is_file():
            return candidate
    for ext in (".jpg", ".jpeg", ".png", *sorted(IMAGE_EXTENSIONS)):
        for candidate in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def _read_voc(root: Path, labels: list[str] | None, counter: _Counter) -> DetectionSet:
    xmls = sorted((root / "Annotations").glob("*.xml"))
    if not xmls:
        raise UsageError(f"{root / 'Annotations'} holds no .xml files. Put one VOC annotation per image there.")
    images = root / "JPEGImages"
    if not images.is_dir():
        raise DataError(f"{images} is missing: a VOC dataset keeps its images in JPEGImages/.")
    parsed = []
    names: set[str] = set()
    for xml in xmls:
        node = _xml_root(xml)
        path = _find_image(images, xml.stem, _text(node, "filename"))
        if path is None:
            raise DataError(f"{xml}: its image {_text(node, 'filename') or xml.stem + '.jpg'} is missing from {images}.")
        size = None
        size_node = node.find("size")
        try:
            if size_node is not None:
                w, h = int(float(_text(size_node, "width", "0"))), int(float(_text(size_node, "height", "0")))
                size = (h, w) if w > 0 and h > 0 else None
            objects = []
            for obj in node.findall("object"):
                name = _text(obj, "name")
                bb = obj.find("bndbox")
                if not name or bb is None:
                    counter.counts["skipped_boxes"] += 1
                    continue
                box = [float(_text(bb, k, "nan")) for k in ("xmin", "ymin", "xmax", "ymax")]
                objects.append((name, box, _text(obj, "difficult", "0") == "1"))
                names.add(name)
        except (ValueError, OverflowError) as exc:
            raise DataError(f"{xml}: a number cannot be read ({exc}).") from None
        parsed.append((path, size, objects))
    labels = list(labels) if labels is not None else sorted(names)
    index = {name: i for i, name in enumerate(labels)}
    samples = []
    for path, size, objects in parsed:
        known = [(index[n], b, d) for n, b, d in objects if n in index]
        for n, _, _ in objects:
            if n not in index:
                counter.counts["unknown_class_boxes"] += 1
                counter.unknown.add(n)
        samples.append(_sample(path, [b for _, b, _ in known], [c for c, _, _ in known], [d for _, _, d in known],
                               size, counter))
    splits = {}
    for split_file in sorted((root / "ImageSets" / "Main").glob("*.txt")) if (root / "ImageSets" / "Main").is_dir() else []:
        if "_" not in split_file.stem:  # train.txt, val.txt, test.txt (not per-class aeroplane_train.txt)
            splits[split_file.stem] = split_file.read_text(encoding="utf-8", errors="replace").split()
    return DetectionSet(samples=samples, labels=labels, format="voc", splits=splits)


# --------------------------------------------------------------------------- COCO JSON


def _coco_json(root: Path) -> Path | None:
    for folder in (root, root / "annotations"):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            try:
                with open(path, "rb") as fh:
                    head = fh.read(1 << 16).decode("utf-8", errors="ignore")
            except OSError:
                continue
            if '"annotations"' in head or '"images"' in head or '"categories"' in head:
                return path
    return None


def _read_coco(root: Path, labels: list[str] | None, counter: _Counter) -> DetectionSet:
    path = _coco_json(root)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        categories = {int(c["id"]): str(c["name"]) for c in data.get("categories", [])}
        image_rows = data["images"]
        annotations = data.get("annotations", [])
        if not all(isinstance(v, list) and all(isinstance(r, dict) for r in v) for v in (image_rows, annotations)):
            raise TypeError("'images' and 'annotations' must be lists of objects")
    except (OSError, ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than Python's parser goes (a hostile 1000-deep file)
        raise DataError(f"{path}: not a COCO detection JSON ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}).") from None
    labels = list(labels) if labels is not None else [categories[k] for k in sorted(categories)]
    index = {name: i for i, name in enumerate(labels)}
    by_image: dict[int, list[dict]] = {}
    for ann in annotations:
        by_image.setdefault(ann.get("image_id"), []).append(ann)
    folders = [root / "images", root, path.parent, path.parent.parent / "images"]
    samples = []
    for row in image_rows:
        name = str(row.get("file_name", ""))
        image = next((f / name for f in folders if name and (f / name).is_file()), None)
        if image is None:
            raise DataError(f"{path}: image {name!r} (id {row.get('id')}) is missing; looked in "
                            f"{', '.join(str(f) for f in folders[:2])}.")
        boxes, classes, crowd = [], [], []
        for ann in by_image.get(row.get("id"), []):
            cname = categories.get(int(ann.get("category_id", -1)))
            if cname not in index:
                counter.counts["unknown_class_boxes"] += 1
                counter.unknown.add(str(cname if cname is not None else ann.get("category_id")))
                continue
            try:
                x, y, w, h = (float(v) for v in ann["bbox"])
            except (KeyError, TypeError, ValueError):
                counter.counts["skipped_boxes"] += 1
                continue
            boxes.append([x, y, x + w, y + h])
            classes.append(index[cname])
            crowd.append(bool(ann.get("iscrowd", 0)))  # crowd regions count as "difficult" (ignored)
        h, w = int(row.get("height") or 0), int(row.get("width") or 0)
        samples.append(_sample(image, boxes, classes, crowd, (h, w) if h > 0 and w > 0 else None, counter))
    return DetectionSet(samples=samples, labels=labels, format="coco")


# --------------------------------------------------------------------------- YOLO txt


def _yolo_names(root: Path) -> list[str] | None:
    for name in ("classes.txt", "obj.names", "labels/classes.txt"):
        path = root / name
        if path.is_file():
            return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for name in ("data.yaml", "dataset.yaml"):
        path = root / name
        if path.is_file():
            return _yaml_names(path.read_text(encoding="utf-8"))
    return None


def _yaml_names(text: str) -> list[str] | None:
    """The `names:` of an Ultralytics data.yaml: a flow list, a block list or an index mapping."""
    match = re.search(r"^names:\s*\[(.*?)\]", text, re.M | re.S)
    if match:
        return [n.strip().strip("'\"") for n in match.group(1).split(",") if n.strip()]
    match = re.search(r"^names:\s*\n((?:[ \t]+.*\n?)+)", text, re.M)
    if not match:
        return None
    names: dict[int, str] = {}
    for i, line in enumerate(match.group(1).splitlines()):
        line = line.strip()
        if line.startswith("- "):
            names[i] = line[2:].strip().strip("'\"")
        elif ":" in line:
            key, value = line.split(":", 1)
            if key.strip().isdigit():
                names[int(key)] = value.strip().strip("'\"")
    return [names[k] for k in sorted(names)] or None


def _read_yolo(root: Path, labels: list[str] | None, counter: _Counter) -> DetectionSet:
    from zoo.data.images import list_images

    from_data = _yolo_names(root)
    images = list_images(root / "images", recursive=True)
    if not images:
        raise UsageError(f"{root / 'images'} holds no images. Put the images in images/ and one .txt per image in labels/.")
    rows = []
    top = -1
    for image in images:
        label_file = (root / "labels" / image.relative_to(root / "images")).with_suffix(".txt")
        if not label_file.is_file():
            raise DataError(f"{image}: its label file {label_file} is missing (an image without objects needs an empty file).")
        boxes, classes = [], []
        for n, line in enumerate(label_file.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            try:
                cls = int(parts[0])
                cx, cy, w, h = (float(v) for v in parts[1:5])
                if len(parts) < 5 or cls < 0:
                    raise ValueError
            except ValueError:
                counter.counts["skipped_boxes"] += 1
                continue
            boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
            classes.append(cls)
            top = max(top, cls)
        rows.append((image, boxes, classes))
    if labels is None and not from_data and top >= 1 << 16:  # names "0".."N" for a typo'd index would fill memory
        raise DataError(f"{root}: class index {top} in labels/ is implausibly large for a dataset without class "
                        f"names. Fix the label line, or list the class names in classes.txt.")
    if labels is None:
        labels = from_data if from_data else [str(i) for i in range(top + 1)]
    if from_data and labels != from_data:
        raise UsageError(f"{root}: its class names {from_data} differ from the training classes {labels}.")
    samples = []
    for image, boxes, classes in rows:
        keep = [i for i, c in enumerate(classes) if c < len(labels)]
        for i, c in enumerate(classes):
            if c >= len(labels):
                counter.counts["unknown_class_boxes"] += 1
                counter.unknown.add(str(c))
        # Normalised boxes: clip to [0, 1] here; pixels need the image size, read at load time.
        norm = np.asarray([boxes[i] for i in keep], dtype=np.float64).reshape(-1, 4)
        sample = _sample(image, norm, [classes[i] for i in keep], [False] * len(keep), (1, 1), counter)
        sample.size, sample.normalised = None, True
        samples.append(sample)
    return DetectionSet(samples=samples, labels=list(labels), format="yolo")


def load_sample(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """(image HxWx3 uint8, boxes (N, 4) in its pixels) via the shared decoder."""
    from zoo.data.images import decode_image

    image = decode_image(sample.path, channels=3)
    boxes = sample.boxes.astype(np.float32)
    h, w = image.shape[:2]
    if sample.normalised:
        boxes = boxes * np.array([w, h, w, h], dtype=np.float32)
    elif sample.size is not None and sample.size != (h, w) and len(boxes):
        # The annotation's size disagrees with the file (e.g. a resized copy): rescale the boxes.
        sh, sw = sample.size
        boxes = boxes * np.array([w / sw, h / sh, w / sw, h / sh], dtype=np.float32)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    return image, boxes
