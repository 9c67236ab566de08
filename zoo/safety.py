"""Trust-boundary helpers: what zoo checks before it uses files that came from someone else.

- `check_meta(meta, origin)`: a model directory's metadata.json holds the types zoo reads from it
  (labels a list of strings, input_shape [H, W, C], preprocessing an object...), so a damaged or
  hostile file fails at load time with one line naming the key, never deep inside predict.
- `check_labels(model, meta, origin)`: a classifier's label count equals its output units.
- `safe_extract(archive, dest)`: a .tar / .tar.gz (TF-Hub modules) unpacked with tarfile's
  "data" filter plus explicit refusals: absolute names, `..`, links (symbolic or hard) and
  device files are an error, so nothing lands outside `dest`; members are written into a temp
  folder beside `dest` that is renamed into place only when the whole archive is out.
The URL policy (https only, except loopback or ZOO_ALLOW_HTTP=1) is zoo.pretrained.fetch.check_url.
No TensorFlow here.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from zoo.errors import UsageError

_NUMBER = (int, float)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, _NUMBER) and not isinstance(value, bool)


def _list_of(check, value: Any) -> bool:
    return isinstance(value, list) and all(check(v) for v in value)


# key -> (rule in words, check); keys not listed are free-form (task extras).
_META_RULES: dict[str, tuple[str, Any]] = {
    "arch": ("a string", lambda v: isinstance(v, str)),
    "task": ("a string", lambda v: isinstance(v, str)),
    "labels": ("a list of strings", lambda v: _list_of(lambda s: isinstance(s, str), v)),
    "input_shape": ("[H, W, C]: three positive whole numbers (or null)",
                    lambda v: isinstance(v, list) and len(v) == 3 and all(d is None or (_is_int(d) and 0 < d <= 1 << 16)
                                                                          for d in v)),
    "preprocessing": ("an object", lambda v: isinstance(v, dict)),
    "weights": ("an object", lambda v: isinstance(v, dict)),
    "metrics": ("an object", lambda v: isinstance(v, dict)),
    "versions": ("an object", lambda v: isinstance(v, dict)),
    "data": ("an object", lambda v: isinstance(v, dict)),
    "precision": ("a string", lambda v: isinstance(v, str)),
    "vocabulary": ("a list of strings", lambda v: _list_of(lambda s: isinstance(s, str), v)),
    "max_length": ("a positive whole number", lambda v: _is_int(v) and 0 < v <= 1 << 16),
    "anchors": ("a list of [width, height] number pairs",
                lambda v: _list_of(lambda a: _list_of(_is_number, a) and len(a) == 2, v)),
    "detection": ("an object", lambda v: isinstance(v, dict)),
    "captioning": ("an object", lambda v: isinstance(v, dict)),
}
_PREPROCESSING_RULES: dict[str, tuple[str, Any]] = {
    "mode": ("a string", lambda v: isinstance(v, str)),
    "scale": ("a positive number", lambda v: _is_number(v) and 0 < v < float("inf")),
    "mean": ("a list of numbers", lambda v: _list_of(_is_number, v) and 0 < len(v) <= 4),
    "std": ("a list of positive numbers", lambda v: _list_of(lambda s: _is_number(s) and s > 0, v) and 0 < len(v) <= 4),
    "channel_order": ("'rgb' or 'bgr'", lambda v: v in ("rgb", "bgr")),
    "resize": ("'squash', 'crop' or 'letterbox'", lambda v: v in ("squash", "crop", "letterbox")),
    "crop_pct": ("a number in (0, 1]", lambda v: _is_number(v) and 0 < v <= 1),
    "interpolation": ("a string", lambda v: isinstance(v, str)),
    "in_model": ("true or false", lambda v: isinstance(v, bool)),
}


def _short(value: Any) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= 80 else text[:77] + "..."


def check_meta(meta: dict[str, Any], origin: str | os.PathLike) -> dict[str, Any]:
    """Return `meta` unchanged when every key zoo reads has the right type; else UsageError naming it."""
    fix = "Fix the file or re-create the model directory with `zoo finetune`."
    for key, (rule, ok) in _META_RULES.items():
        if key in meta and meta[key] is not None and not ok(meta[key]):
            raise UsageError(f"{origin}: `{key}` must be {rule}. Received: {_short(meta[key])}. {fix}")
    shape = meta.get("input_shape")
    if shape and shape[0] and shape[1]:
        from zoo.data.images import PILLOW_HARD_LIMIT, max_pixels_limit

        limit = max_pixels_limit() or PILLOW_HARD_LIMIT
        if shape[0] * shape[1] > limit:
            raise UsageError(f"{origin}: `input_shape` {shape} is {shape[0] * shape[1]} pixels, above the pixel limit "
                             f"{limit} (ZOO_MAX_PIXELS). {fix}")
    for key, (rule, ok) in _PREPROCESSING_RULES.items():
        pre = meta.get("preprocessing") or {}
        if key in pre and pre[key] is not None and not ok(pre[key]):
            raise UsageError(f"{origin}: `preprocessing.{key}` must be {rule}. Received: {_short(pre[key])}. {fix}")
    return meta


def check_labels(model, meta: dict[str, Any], origin: str | os.PathLike) -> None:
    """A classifier's labels must name each of its output units (others are not checkable here)."""
    labels = meta.get("labels")
    if meta.get("task", "classification") != "classification" or not labels:
        return
    try:
        units = model.outputs[0].shape[-1]
    except (AttributeError, IndexError, TypeError):
        return
    if units is not None and len(model.outputs) == 1 and int(units) != len(labels):
        raise UsageError(f"{origin}: metadata.json lists {len(labels)} labels but the model has {int(units)} outputs. "
                         f"Fix `labels` (one per class, in index order) or re-create the model directory.")


# A zip member inflating more than this many times its stored size (and past 16 MiB) is a bomb:
# weights barely compress, so a real .keras file is far below it.
MAX_ZIP_RATIO = 100
MAX_ZIP_TOTAL = 1 << 36  # 64 GiB unpacked in all


def check_zip(archive, origin: str | os.PathLike) -> None:
    """Refuse a zip (a .keras model file) whose members would unpack to far more than it holds.

    zipfile itself never reads past a member's declared size, so the declared sizes are what to bound:
    each member's ratio to its compressed size, and the total.
    """
    total = 0
    for info in archive.infolist():
        total += info.file_size
        if info.file_size > 1 << 24 and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
            raise UsageError(f"Refusing {origin}: member {info.filename!r} unpacks to {info.file_size} bytes from "
                             f"{info.compress_size} (more than {MAX_ZIP_RATIO}:1), a zip bomb. Save the model again.")
    if total > MAX_ZIP_TOTAL:
        raise UsageError(f"Refusing {origin}: its members unpack to {total} bytes in all (limit {MAX_ZIP_TOTAL}). "
                         f"Save the model again.")


def _refuse(archive: Path, member: tarfile.TarInfo, why: str) -> None:
    raise UsageError(f"Refusing to extract {archive}: member {member.name!r} {why}. "
                     f"Archives zoo unpacks may hold only plain files and folders inside the target.")


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Unpack a .tar / .tar.gz / .tgz into `dest` (created; must not exist yet), refusing anything
    that could write outside it. Returns `dest`.

    Raises:
        UsageError: a member with an absolute name, `..`, a link, or a device / fifo; or a file that
            is not a tar archive. Nothing is left at `dest` then.
    """
    archive, dest = Path(archive), Path(dest)
    if dest.exists():
        raise UsageError(f"{dest} already exists; zoo extracts archives into a new folder only.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    from zoo.files import atomic_dir

    # overwrite=False: another process that unpacked the same archive first keeps its folder
    with atomic_dir(dest, overwrite=False) as tmp:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = tar.getmembers()
                for member in members:
                    name = PurePosixPath(member.name)
                    if name.is_absolute() or (name.parts and name.parts[0].endswith(":")):  # /etc, C:
                        _refuse(archive, member, "has an absolute path")
                    if ".." in name.parts or "\\" in member.name:
                        _refuse(archive, member, "points outside the target (`..`)")
                    if member.issym() or member.islnk():
                        _refuse(archive, member, f"is a link (to {member.linkname!r})")
                    if not (member.isfile() or member.isdir()):
                        _refuse(archive, member, "is a device, fifo or other special file")
                # The "data" filter repeats these checks inside tarfile and drops setuid bits and
                # owners; ours run first so the message says what was wrong.
                tar.extractall(tmp, members=members, filter="data")
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            if isinstance(exc, UsageError):
                raise
            raise UsageError(f"Cannot extract {archive}: {' '.join(str(exc).split())}. "
                             f"Give a .tar.gz archive of the module.") from None
    return dest


def extract_cached(archive: str | os.PathLike, root: str | os.PathLike) -> Path:
    """`archive` unpacked with safe_extract into root/<first 16 hex of its sha256>/, reused once there
    (the hash names the content, so a changed archive never reuses a stale folder)."""
    import hashlib

    archive = Path(archive)
    digest = hashlib.sha256()
    with open(archive, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    dest = Path(root) / digest.hexdigest()[:16]
    if dest.is_dir():
        return dest
    try:
        return safe_extract(archive, dest)
    except OSError:
        if dest.is_dir():  # another process finished the same extraction first
            return dest
        raise
