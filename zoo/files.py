"""The one way zoo writes a file: a temporary file beside the target, fsync, rename.

A reader (or a crash, or a full disk) never sees a half-written file: either the old file or
the new one is there. The file gets the permissions of any file the user makes (0666 minus the
umask; folders 0777 minus the umask), not mkstemp's private 0600. Every writer in zoo goes
through this module:

- `atomic_open` / `atomic_write` / `write_text` / `write_bytes` / `save_image` / `save_figure`
  for writers that take a file object;
- `atomic_path` for writers that insist on a file name (Keras's `model.save`, converters);
- `atomic_dir` for a folder filled in one go (an unpacked archive);
- `publish` to move a finished temporary file or folder into place (a resumable download, an
  export checked before it is kept).
"""

from __future__ import annotations

import os
import shutil
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


def file_mode() -> int:
    """Permissions of a new file: what open() would give it under the current umask."""
    return 0o666 & ~_umask()


def _fsync_file(path: str | os.PathLike) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(folder: str | os.PathLike) -> None:
    # The rename itself is durable only once the folder holding the name is synced.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse to sync a folder; the data itself is synced
        pass
    finally:
        os.close(fd)


def publish(tmp: str | os.PathLike, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Move the finished temporary file or folder `tmp` (beside `path`) to `path`.

    Its data is synced first and it gets the umask's permissions. An existing folder at `path` is
    moved aside and removed only once the new one is in place. With overwrite=False an existing
    non-empty folder at `path` is left alone and the rename raises OSError.
    """
    tmp, path = Path(tmp), Path(path)
    mask = _umask()
    if tmp.is_dir():
        for root, _, files in os.walk(tmp):
            for name in files:
                if not os.path.islink(os.path.join(root, name)):
                    _fsync_file(os.path.join(root, name))
        os.chmod(tmp, 0o777 & ~mask)
    else:
        _fsync_file(tmp)
        os.chmod(tmp, 0o666 & ~mask)
    old = None
    if overwrite and path.is_dir() and not path.is_symlink():
        old = path.with_name(f".{path.name[:100]}.old-{os.getpid()}")
        os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        if old is not None:
            os.replace(old, path)
        raise
    _fsync_dir(path.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", *, fsync: bool = True) -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on success it replaces `path`, on error it vanishes."""
    path = Path(path)
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'wb' or 'w'. Received: mode={mode!r}.")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if fsync:
            _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary file name beside `path` (same suffix) for writers that need a name rather than a
    file object; once the block succeeds the file replaces `path`, on error it is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:100]}.", suffix=path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """A temporary folder beside `path` to fill; once the block succeeds it replaces `path` (see
    `publish` for `overwrite`), on error it is removed with everything in it."""
    path = Path(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name[:100]}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        publish(tmp, path, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
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
