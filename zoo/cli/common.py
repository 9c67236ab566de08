"""Helpers shared by the CLI commands: console output and error handling."""

from __future__ import annotations

import sys


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=True)


def is_tty(stream=None) -> bool:
    stream = stream or sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up chatter before it is imported by a command."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
