"""Errors a user can act on.

Every error the harness raises for bad input or missing data is a `ToxbenchError`: the CLI prints
its message as one line and exits with code 2, so scripts can tell "you gave me something wrong"
from a crash.
"""

from __future__ import annotations


class ToxbenchError(Exception):
    """A problem the user can fix; the message says what is wrong, where, and what to do."""

    exit_code = 2


class DataError(ToxbenchError):
    """A data file is missing, corrupted, or does not have the expected shape."""
