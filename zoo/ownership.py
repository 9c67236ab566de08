"""zoo's ownership mark on the folders it writes, and the only way zoo removes things from them.

zoo never deletes a file it did not write. A folder made by `zoo finetune`, `zoo tune` or `zoo export`
(SavedModel) carries a small file, `.zoo-owned`, naming the command that made it. `--resume`,
`--overwrite` and an export over a previous export act only on folders carrying the mark, and only
on the names the command itself writes; anything else is refused before a single file is touched.

Removal never follows a symbolic link: a link where zoo expects its own file or folder means the
folder is not (only) zoo's, so the whole operation is refused rather than half done.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path

from zoo.errors import UsageError

MARK = ".zoo-owned"
KINDS = ("finetune", "tune", "export")
_MAX_MARK_BYTES = 4096


def mark_owned(folder: str | os.PathLike, kind: str) -> Path:
    """Write the ownership mark into `folder` (which must exist), saying `kind` made it."""
    from zoo.files import write_text

    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {', '.join(KINDS)}. Received: kind={kind!r}.")
    return write_text(Path(folder) / MARK, json.dumps({"zoo": kind}) + "\n")


def owner(folder: str | os.PathLike) -> str | None:
    """The kind that marked `folder`, or None when it carries no valid mark (a link is no mark)."""
    path = Path(folder) / MARK
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_MARK_BYTES:
            return None
        kind = json.loads(path.read_text(encoding="utf-8")).get("zoo")
    except (OSError, ValueError, AttributeError):
        return None
    return kind if kind in KINDS else None


def is_owned(folder: str | os.PathLike, kind: str | None = None) -> bool:
    """True when `folder` is a real folder (not a link) carrying zoo's mark (of `kind`, if given)."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return False
    found = owner(folder)
    return found is not None and (kind is None or found == kind)


def require_owned(folder: str | os.PathLike, kind: str, *, action: str) -> None:
    """Raise a usage error unless `folder` carries zoo's `kind` mark; `action` names what was refused."""
    if not is_owned(folder, kind):
        raise UsageError(f"{action} refused: {str(folder)!r} is not a folder written by `zoo {kind}` "
                         f"(it has no {MARK} mark), and zoo never deletes files it did not write. "
                         f"Choose another output path.")


def remove_owned(folder: str | os.PathLike, names: Iterable[str]) -> None:
    """Remove `names` (zoo's own files and folders) from the zoo-owned `folder`, never following links.

    Every name is checked before anything is removed: a symbolic link among them refuses the whole
    removal with a usage error, so nothing is half deleted.
    """
    folder = Path(folder)
    if folder.is_symlink():
        raise UsageError(f"{str(folder)!r} is a symbolic link; zoo removes files only inside a real folder it wrote.")
    names = list(names)
    for name in names:
        if Path(name).name != name or name in ("", ".", ".."):
            raise ValueError(f"remove_owned takes plain names inside the folder. Received: {name!r}.")
        if (folder / name).is_symlink():
            raise UsageError(f"{str(folder / name)!r} is a symbolic link, not a file zoo wrote; nothing was removed. "
                             f"Remove the link yourself or choose another output path.")
    for name in names:
        path = folder / name
        if path.is_dir():
            # rmtree on Linux works through file descriptors and never follows links inside the tree.
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
