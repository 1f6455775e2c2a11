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


# ---- ml-10m: `::`-separated, half-star ratings, UTF-8, no users.dat ------------------------
ML10M_MOVIES = [
    (1, "Toy Story (1995)", "Adventure|Animation|Children|Comedy|Fantasy"),
    (11, "American President, The (1995)", "Comedy|Drama|Romance"),
    (122, "Boomerang (1992)", "Comedy|Romance"),
    (185, "Net, The (1995)", "Action|Crime|Thriller"),
    (8600, "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)", "Comedy|Romance"),
    (64999, "Deep Sea 3D (2006)", "Documentary|IMAX"),
    (65000, "Unseen Film (2008)", "(no genres listed)"),
]
ML10M_RATINGS = [
    (1, 122, 5, 838985046),
    (1, 185, 4.5, 838983525),
    (2, 8600, 3.5, 868245777),
    (2, 1, 0.5, 868245920),
    (3, 64999, 2, 1136075494),
    (3, 65000, 4, 1133571000),
    (3, 11, 3.5, 1136075500),
]


def ml10m_texts() -> dict[str, bytes]:
    movies = "".join(f"{m}::{t}::{g}\n" for m, t, g in ML10M_MOVIES).encode("utf-8")
    ratings = "".join(f"{u}::{m}::{r:g}::{t}\n" for u, m, r, t in ML10M_RATINGS).encode("ascii")
    tags = b"15::4973::excellent!::1215184630\n"
    return {"movies.dat": movies, "ratings.dat": ratings, "tags.dat": tags}


def write_ml10m_zip(path: Path) -> Path:
    """The GroupLens ml-10m.zip layout: one folder named ml-10M100K."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, raw in ml10m_texts().items():
            archive.writestr(f"ml-10M100K/{name}", raw)
    return path


# ---- ml-20m / 25m / 32m / latest: CSV with a header and quoted titles ---------------------
CSV_MOVIES = [
    (1, "Toy Story (1995)", "Adventure|Animation|Children|Comedy|Fantasy"),
    (11, '"American President, The (1995)"', "Comedy|Drama|Romance"),
    (296, "Pulp Fiction (1994)", "Comedy|Crime|Drama|Thriller"),
    (4973, '"Amélie (Fabuleux destin d\'Amélie Poulain, Le) (2001)"', "Comedy|Romance"),
    (72998, "Avatar (2009)", "Action|Adventure|Sci-Fi|IMAX"),
    (209171, "Unseen Film (2019)", "(no genres listed)"),
]
CSV_RATINGS = [
    (1, 296, 5.0, 1147880044),
    (1, 11, 3.5, 1147868817),
    (2, 4973, 4.0, 1141415820),
    (2, 1, 0.5, 1141415900),
    (3, 72998, 4.5, 1439472215),
    (3, 209171, 3.0, 1439472300),
    (3, 296, 1.0, 1439472400),
]


def csv_texts(*, bom: bool = False, crlf: bool = False) -> dict[str, bytes]:
    end = "\r\n" if crlf else "\n"
    movies = "movieId,title,genres" + end
    movies += "".join(f"{m},{t},{g}{end}" for m, t, g in CSV_MOVIES)
    ratings = "userId,movieId,rating,timestamp" + end
    ratings += "".join(f"{u},{m},{r:.1f},{t}{end}" for u, m, r, t in CSV_RATINGS)
    prefix = b"\xef\xbb\xbf" if bom else b""
    return {
        "movies.csv": prefix + movies.encode("utf-8"),
        "ratings.csv": prefix + ratings.encode("ascii"),
        "links.csv": b"movieId,imdbId,tmdbId\n1,0114709,862\n",
        "tags.csv": b"userId,movieId,tag,timestamp\n3,260,classic,1439472355\n",
    }


def write_csv_release(folder: Path, **overrides: bytes | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in (csv_texts() | overrides).items():
        if raw is not None:
            (folder / name).write_bytes(raw)
    return folder


def write_csv_release_zip(path: Path, *, folder: str = "ml-25m", **kwargs: bool) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, raw in csv_texts(**kwargs).items():
            archive.writestr(f"{folder}/{name}", raw)
    return path
