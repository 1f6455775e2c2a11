"""Typed errors of the posterior store; messages say what went wrong and what to do."""

from __future__ import annotations

__all__ = [
    "TRAIN_HINT",
    "CorruptVersionError",
    "NoPosteriorError",
    "StoreError",
    "VersionNotFoundError",
]


class StoreError(Exception):
    """A problem with the posterior store."""


class NoPosteriorError(StoreError):
    """The store holds no posterior version (or not the one asked for)."""


class VersionNotFoundError(NoPosteriorError):
    """A named version does not exist in the store."""


class CorruptVersionError(StoreError):
    """A version's manifest or one of its files is missing, truncated or altered.

    `file` is the version-relative path of the bad file (or "manifest.json").
    """

    def __init__(self, message: str, *, version: str, file: str):
        super().__init__(message)
        self.version = version
        self.file = file


TRAIN_HINT = "train one with `python -m training train --preset default`"
