"""Errors that zoo raises for user mistakes.

Every user-facing error says the rule, the value received and what to do next. The CLI turns
`UsageError` into one line on stderr and exit status 2, and never prints a traceback for it.
"""

from __future__ import annotations


class ZooError(Exception):
    """Base class of zoo's own errors."""


class UsageError(ZooError, ValueError):
    """A user mistake: a bad argument, a missing file, data in the wrong layout (exit status 2)."""


class DataError(UsageError):
    """A data file or folder that cannot be read as the format it claims to be."""


class WeightsError(ZooError):
    """Weights that cannot be found, fetched, verified or loaded."""


class ImageError(DataError):
    """One image that cannot be decoded; batch work turns it into an error record and goes on."""


class MissingDependency(ZooError):
    """An optional package a feature needs is not installed; the message names the pip extra."""
