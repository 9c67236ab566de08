"""Helpers shared by the CLI commands: console output and the one error -> exit status mapper.

Exit status, in every command: 0 success; 1 a failure (some inputs, a download, a disk, weights,
an export that fails its parity check, anything unexpected); 2 a usage mistake (zoo.errors.UsageError
or a click usage error). A failure is one line on stderr, never a traceback (ZOO_VERBOSE=1 shows
the traceback of an unexpected error). A closed stdout pipe (`zoo predict ... | head -2`) ends
quietly with status 0: the reader has all it asked for.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

EXIT_FAILURE = 1
EXIT_USAGE = 2
_FULL_DISK = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=True)


def is_tty(stream=None) -> bool:
    stream = stream or sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up chatter before it is imported by a command."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def printable(text: Any) -> str:
    """`text` with control characters (ESC, BEL, C1, bidi overrides...) shown as escapes, so a label or
    file name never drives the terminal (cursor moves, colours, rewritten lines) in table or CSV output."""
    import unicodedata

    text = str(text)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch == " " or unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def _one_line(text: str) -> str:
    return printable(" ".join(str(text).split()))


def closed_pipe(exc: BaseException) -> bool:
    return isinstance(exc, BrokenPipeError) or (isinstance(exc, OSError) and exc.errno == errno.EPIPE)


def _silence_stdout() -> None:
    # Output still buffered for the closed pipe would fail again when Python flushes at exit.
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (click's test runner)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def report_error(exc: BaseException) -> int:
    """The one mapper: print `exc` as one line on stderr and return zoo's exit status for it."""
    from zoo.errors import ImageError, UsageError, ZooError

    if closed_pipe(exc):
        _silence_stdout()
        return 0
    if isinstance(exc, click.UsageError):
        where = exc.ctx.command_path if exc.ctx is not None else "zoo"
        message, code = f"{_one_line(exc.format_message())} Run `{where} --help` for usage.", EXIT_USAGE
    elif isinstance(exc, click.ClickException):
        message, code = _one_line(exc.format_message()), exc.exit_code
    elif isinstance(exc, UsageError) and not isinstance(exc, ImageError):
        message, code = _one_line(exc), EXIT_USAGE
    elif isinstance(exc, ZooError):  # weights that cannot be fetched or verified, an unreadable image...
        message, code = _one_line(exc), EXIT_FAILURE
    elif isinstance(exc, OSError) and exc.errno in _FULL_DISK:
        # a full disk or quota is the machine's state, not a bug (files are written atomically, so
        # nothing half-written was left under a final name)
        where = f": {exc.filename}" if exc.filename else ""
        message = f"{exc.strerror or exc}{where}. Free some space (or raise the quota) and run again."
        code = EXIT_FAILURE
    elif isinstance(exc, OSError):  # a network failure, a permission, a missing file
        reason = getattr(exc, "reason", None)  # urllib's URLError keeps the cause here
        where = f": {exc.filename}" if exc.filename else ""
        message, code = _one_line(f"{reason or exc.strerror or exc}{where}"), EXIT_FAILURE
    else:
        if os.environ.get("ZOO_VERBOSE"):
            raise exc
        message = (f"{type(exc).__name__}: {_one_line(exc)} (unexpected: run again with ZOO_VERBOSE=1 for the "
                   f"traceback, and report it)")
        code = EXIT_FAILURE
    try:
        click.echo(f"Error: {message}", err=True)
    except OSError:  # stderr is gone too: the status still tells
        pass
    return code


@contextmanager
def cli_errors() -> Iterator[None]:
    """Every command runs inside this (zoo.cli's group invokes it): errors become `report_error`'s
    line and exit status; Python warnings become one "Warning:" line each."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        click.echo(f"Warning: {_one_line(message)}", err=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        try:
            yield
        except (click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            raise click.exceptions.Exit(report_error(exc)) from None
