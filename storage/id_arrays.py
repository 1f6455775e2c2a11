"""Ids in a version: public text ids, stored as numpy unicode arrays (format 2).

Format-1 versions stored int64 ids; they are read as their decimal text, so every version
serves the same kind of id. The manifest's "ids" records what the source's ids were
("int" or "str"), for provenance.
"""

from __future__ import annotations

import numpy as np

from common.ids import id_problem

__all__ = ["IdLookup", "id_kind", "ids_as_text"]


def id_kind(ids: np.ndarray) -> str:
    """'int' for an integer array, 'str' for anything else."""
    return "int" if np.asarray(ids).dtype.kind in "iu" else "str"


def ids_as_text(ids: np.ndarray, *, what: str) -> np.ndarray:
    """The public text of each id, as a numpy unicode array [n]; ValueError for an id
    the API could not serve (empty, '/', control characters, too long) or a repeat."""
    array = np.asarray(ids)
    # The narrowest unicode dtype that holds every id (astype(str) of int64 takes 21).
    text = np.array(array.astype(str).tolist()) if array.size else np.zeros(0, "<U1")
    if array.dtype.kind not in "iu":
        for value in text.tolist():
            why = id_problem(value)
            if why:
                raise ValueError(f"{what} id {value!r} cannot be served: {why}")
    if np.unique(text).size != text.size:
        raise ValueError(f"{what} ids repeat once written as text")
    return text


class IdLookup:
    """Index of each public id (built on first use)."""

    def __init__(self, ids: np.ndarray):
        self._ids = ids
        self._index: dict[str, int] | None = None

    def __call__(self, public_id: str) -> int | None:
        if self._index is None:
            self._index = {value: i for i, value in enumerate(self._ids.tolist())}
        return self._index.get(public_id)
