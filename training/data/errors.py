"""Typed errors and warnings for problems a user can cause with their data."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DataError", "DataWarning"]


class DataError(ValueError):
    """A data source is missing, malformed or empty.

    The message names the file (and line, where there is one) and says what to do.
    """

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(where + message)
        self.path = None if path is None else str(path)
        self.line = line


class DataWarning(UserWarning):
    """The data loaded, but something in it deserves a look (encoding, filters, ties)."""
