"""The one way zoo writes a file: a temporary file beside the target, fsync, rename.

A reader (or a crash, or a full disk) never sees a half-written file: either the old file or
the new one is there. The file gets the permissions of any file the user makes (0666 minus the
umask), not mkstemp's private 0600. Every writer in zoo goes through `atomic_write`.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    # os.umask can only be read by setting it; the lock keeps two threads from racing on it.
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", *, fsync: bool = True) -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on success it replaces `path`, on error it vanishes."""
    path = Path(path)
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'wb' or 'w'. Received: mode={mode!r}.")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call `write(fh)` on a binary temporary file beside `path`, then rename it over `path`."""
    with atomic_open(path, "wb") as fh:
        write(fh)
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda fh: fh.write(data))


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def save_image(image, path: str | os.PathLike, *, format: str = "PNG") -> Path:
    """A PIL image (or HxW[xC] uint8 array) as a PNG, atomically."""
    if not hasattr(image, "save"):
        from PIL import Image

        image = Image.fromarray(image)
    return atomic_write(path, lambda fh: image.save(fh, format=format))


def save_figure(fig, path: str | os.PathLike, **savefig: Any) -> Path:
    """A matplotlib figure as PNG, atomically (format from the target's suffix, default PNG)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, **savefig))
