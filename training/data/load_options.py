"""`LoadOptions`: what counts as a watch, and how a generic interactions file is read."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from training.data.errors import DataError

__all__ = ["COLUMN_DEFAULTS", "ID_TYPES", "IdType", "LoadOptions"]

IdType = Literal["auto", "str", "int"]
ID_TYPES: tuple[str, ...] = ("auto", "str", "int")

# Column names tried, in order, when no flag names the column.
COLUMN_DEFAULTS: dict[str, tuple[str, ...]] = {
    "user": ("user", "user_id", "userId", "userid"),
    "item": ("item", "item_id", "itemId", "movie", "movie_id", "movieId", "movieid"),
    "rating": ("rating",),
    "timestamp": ("timestamp", "time", "ts"),
    "title": ("title",),
    "genres": ("genres",),
}


@dataclass(frozen=True, kw_only=True)
class LoadOptions:
    """Options of `load_source`. The defaults read a source as the reference does: every
    rating is a watch, repeated (user, item) pairs count once, nothing else is removed.

    Attributes:
        min_rating: a rating counts as a watch only when >= this (None: every rating).
        min_user_watches, min_item_watches: k-core filter, applied until stable: users
            with fewer watches, and items with fewer watchers, are dropped (1: keep all).
        items: an items file (title, genres) for a generic interactions file.
        user_column, item_column, rating_column, timestamp_column: column names in a
            generic file (None: the first of `COLUMN_DEFAULTS` that exists).
        id_type: generic ids are numeric when every value is a decimal integer without
            leading zeros ("auto"), or always text ("str"), or must be integers ("int").
    """

    min_rating: float | None = None
    min_user_watches: int = 1
    min_item_watches: int = 1
    items: str | None = None
    user_column: str | None = None
    item_column: str | None = None
    rating_column: str | None = None
    timestamp_column: str | None = None
    id_type: IdType = "auto"

    def validate(self) -> LoadOptions:
        """Raise `DataError` for impossible values; return self otherwise."""
        for name in ("min_user_watches", "min_item_watches"):
            if getattr(self, name) < 1:
                flag = "--" + name.replace("_", "-")
                raise DataError(f"{flag} must be at least 1, got {getattr(self, name)}")
        if self.min_rating is not None and self.min_rating != self.min_rating:
            raise DataError("--min-rating must be a number")
        if self.id_type not in ID_TYPES:
            raise DataError(f"--id-type must be one of {', '.join(ID_TYPES)}, not {self.id_type!r}")
        return self

    @property
    def generic_only(self) -> dict[str, Any]:
        """The options that only a generic interactions file can use, where set."""
        names = ("items", "user_column", "item_column", "rating_column", "timestamp_column")
        out: dict[str, Any] = {n: getattr(self, n) for n in names if getattr(self, n)}
        if self.id_type != "auto":
            out["id_type"] = self.id_type
        return out

    def as_dict(self) -> dict[str, Any]:
        """The options that differ from the defaults (for summaries and manifests)."""
        default = LoadOptions()
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }
