"""Tiny MovieLens files in the exact GroupLens formats (the real data may not be shipped)."""

from __future__ import annotations

import zipfile
from pathlib import Path

# (movie id, title, genres) with ISO-8859-1 characters and the "Children's" spelling.
ML1M_MOVIES = [
    (1, "Toy Story (1995)", "Animation|Children's|Comedy"),
    (2, "Jumanji (1995)", "Adventure|Children's|Fantasy"),
    (10, "GoldenEye (1995)", "Action|Adventure|Thriller"),
    (21, "Get Shorty (1995)", "Action|Comedy|Drama"),
    (50, "Usual Suspects, The (1995)", "Crime|Thriller"),
    (73, "Misérables, Les (1995)", "Drama|Musical"),
    (99, "Never Rated (1999)", "Documentary"),
]
# UserID::MovieID::Rating::Timestamp; user 6 appears first, so factorized order starts at 6.
ML1M_RATINGS = [
    (6, 50, 4, 978300760),
    (6, 1, 5, 978300761),
    (1, 1, 5, 978824291),
    (1, 10, 3, 978302109),
    (1, 73, 4, 978301968),
    (2, 21, 2, 978298709),
    (2, 2, 4, 978299000),
    (2, 1, 3, 978299100),
    (3, 50, 5, 978297000),
    (6, 1, 4, 978300999),  # a repeated (user, movie) pair counts once
]
ML1M_USERS = [
    (1, "F", 1, 10, "48067"),
    (2, "M", 56, 16, "70072"),
    (3, "M", 25, 15, "55117"),
    (6, "F", 50, 9, "55117"),
]

ML100K_GENRES = 19
# movie id, title, genre flag positions (0 = unknown, 1 = Action, 4 = Children's, 5 = Comedy, ...)
ML100K_MOVIES = [
    (1, "Toy Story (1995)", [3, 4, 5]),
    (2, "GoldenEye (1995)", [1, 2, 16]),
    (3, "Four Rooms (1995)", [16]),
    (4, "Get Shorty (1995)", [1, 5, 8]),
    (5, "Mystery Film (1996)", [0]),
]
ML100K_RATINGS = [
    (196, 3, 3, 881250949),
    (186, 1, 3, 891717742),
    (22, 2, 1, 878887116),
    (196, 4, 2, 880606923),
    (186, 5, 1, 886397596),
    (22, 1, 4, 884182806),
    (244, 4, 2, 880606924),
]


def ml1m_texts() -> dict[str, bytes]:
    movies = "".join(f"{m}::{t}::{g}\n" for m, t, g in ML1M_MOVIES).encode("iso-8859-1")
    ratings = "".join(f"{u}::{m}::{r}::{t}\n" for u, m, r, t in ML1M_RATINGS).encode("ascii")
    users = "".join("::".join(map(str, row)) + "\n" for row in ML1M_USERS).encode("ascii")
    return {"movies.dat": movies, "ratings.dat": ratings, "users.dat": users}


def write_ml1m(folder: Path, **overrides: bytes | None) -> Path:
    """Write ml-1m files; an override replaces a file's bytes, None leaves it out."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = ml1m_texts() | overrides
    for name, raw in texts.items():
        if raw is not None:
            (folder / name).write_bytes(raw)
    return folder


def write_ml1m_zip(path: Path, *, folder: str = "ml-1m") -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, raw in ml1m_texts().items():
            archive.writestr(f"{folder}/{name}", raw)
        archive.writestr(f"{folder}/README", "MovieLens 1M (test copy)\n")
    return path


def ml100k_texts() -> dict[str, bytes]:
    items = []
    for movie, title, flags in ML100K_MOVIES:
        bits = ["1" if i in flags else "0" for i in range(ML100K_GENRES)]
        items.append(
            "|".join([str(movie), title, "01-Jan-1995", "", "http://example.invalid/", *bits])
        )
    data = "".join(f"{u}\t{m}\t{r}\t{t}\n" for u, m, r, t in ML100K_RATINGS)
    return {
        "u.item": ("\n".join(items) + "\n").encode("iso-8859-1"),
        "u.data": data.encode("ascii"),
    }


def write_ml100k(folder: Path, **overrides: bytes | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in (ml100k_texts() | overrides).items():
        if raw is not None:
            (folder / name).write_bytes(raw)
    return folder
