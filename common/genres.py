"""The service's genre names: the TFDS MovieLens labels, in label order."""

from __future__ import annotations

__all__ = ["GENRES", "NO_GENRE", "UNKNOWN"]

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
UNKNOWN = "Unknown"
