"""The service's genre names (TFDS MovieLens labels, in label order) and how each MovieLens
release's genre list, or a user's own, maps onto them.

Every release spells its genres like these names except: ml-100k and ml-1m write
`Children's` (-> `Children`), ml-100k writes `unknown` (-> `Unknown`); ml-10m and later add
`IMAX` and `(no genres listed)`, which are names here too. Other names (from an `--items`
file) match case-insensitively and by the aliases below; anything else becomes `Unknown`,
with one warning listing what was mapped so.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable

from common.genres import GENRES, NO_GENRE, UNKNOWN
from training.data.errors import DataWarning

__all__ = ["GENRES", "NO_GENRE", "GenreMapper", "normalize_genre"]

# GroupLens spellings and common names that differ from the vocabulary (lower case).
_ALIASES = {
    "children's": "Children",
    "childrens": "Children",
    "kids": "Children",
    "science fiction": "Sci-Fi",
    "scifi": "Sci-Fi",
    "sci fi": "Sci-Fi",
    "film noir": "Film-Noir",
    "noir": "Film-Noir",
    "music": "Musical",
    "documentaries": "Documentary",
    "no genres listed": NO_GENRE,
    "": NO_GENRE,
}
_BY_LOWER = {g.lower(): g for g in GENRES} | _ALIASES


def normalize_genre(name: str) -> str | None:
    """The vocabulary name for `name` (None when it has none)."""
    return _BY_LOWER.get(name.strip().lower())


class GenreMapper:
    """Maps genre lists onto the vocabulary and remembers the names it could not map."""

    def __init__(self, where: str):
        self.where = where
        self.unmapped: Counter[str] = Counter()

    def __call__(self, names: Iterable[str]) -> tuple[str, ...]:
        """The mapped genres in their listed order, without repeats ((no genres listed)
        when none is given)."""
        out: list[str] = []
        for name in names:
            genre = normalize_genre(name)
            if genre is None:
                self.unmapped[name] += 1
                genre = UNKNOWN
            if genre not in out:
                out.append(genre)
        if len(out) > 1 and NO_GENRE in out:
            out.remove(NO_GENRE)
        return tuple(out) or (NO_GENRE,)

    def warn(self) -> None:
        """One `DataWarning` listing the names mapped to `Unknown` (if any)."""
        if self.unmapped:
            listed = ", ".join(f"{n!r} ({c})" for n, c in self.unmapped.most_common(8))
            warnings.warn(
                f"{self.where}: {len(self.unmapped)} genre name(s) are not among the "
                f"service's genres and count as 'Unknown': {listed}; see "
                "docs/data-sources.md for the names",
                DataWarning,
                stacklevel=2,
            )
