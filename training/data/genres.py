"""The genre vocabulary of the reference (TFDS MovieLens labels, in label order)."""

from __future__ import annotations

GENRES: tuple[str, ...] = (
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "IMAX",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "Unknown",
    "War",
    "Western",
    "(no genres listed)",
)

NO_GENRE = "(no genres listed)"

# GroupLens spellings that differ from the reference's vocabulary.
_ALIASES = {"Children's": "Children", "unknown": "Unknown"}


def normalize_genre(name: str) -> str:
    """Map a GroupLens genre spelling onto the reference vocabulary."""
    return _ALIASES.get(name, name)
