"""Readers for the GroupLens MovieLens releases: ml-100k, ml-1m, ml-10m, and the CSV
releases ml-20m, ml-25m, ml-32m, ml-latest and ml-latest-small.

Each reads the `.zip` from GroupLens or its extracted folder, detected by the files
present (`training.data.bundle`). Ids are decimal integers by the format's specification;
ratings are numbers (half stars from ml-10m on) that only decide what a watch is
(`--min-rating`). Every problem raises `DataError` naming the file and line; nothing
half-built is returned.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from common.ids import decimal_int
from training.data.bundle import Bundle, open_bundle
from training.data.decode import LATIN1, UTF8, decode_lines, warn_control_chars
from training.data.errors import DataError
from training.data.genre_mapping import GenreMapper
from training.data.numeric import NumericColumn, line_of_row, read_numeric_table
from training.data.rules import Interactions

__all__ = ["ML100K_GENRES", "read_grouplens"]

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip

MovieCatalog = dict[int, tuple[str, tuple[str, ...]]]


def _movie_id(field: str, what: str, where: str, line: int) -> int:
    value = decimal_int(field)
    if value is None:
        raise DataError(
            f"malformed line: {what} {field!r} is not an integer (decimal digits within the "
            "int64 range)",
            path=where,
            line=line,
        )
    return value


def _read_dat_movies(bundle: Bundle, expected: str) -> MovieCatalog:
    """`movies.dat`: MovieID::Title::Genres (ml-1m ISO-8859-1, ml-10m UTF-8)."""
    where = bundle.describe("movies.dat")
    decoded = decode_lines(bundle.read("movies.dat"), where, expected=expected)
    genres = GenreMapper(where)
    catalog: MovieCatalog = {}
    titles = []
    for number, line in decoded.numbered():
        head, sep, rest = line.partition("::")
        title, sep2, listed = rest.rpartition("::")
        if not (sep and sep2):
            raise DataError(
                f"malformed line: expected MovieID::Title::Genres, got {line[:80]!r}",
                path=where,
                line=number,
            )
        movie = _movie_id(head, "MovieID", where, number)
        catalog[movie] = (title, genres(listed.split("|")))
        titles.append((number, title))
    genres.warn()
    warn_control_chars(where, titles, what="title")
    return catalog


def _read_csv_movies(bundle: Bundle) -> MovieCatalog:
    """`movies.csv`: header movieId,title,genres; titles quoted when they hold a comma."""
    where = bundle.describe("movies.csv")
    decoded = decode_lines(bundle.read("movies.csv"), where, expected=UTF8)
    genres = GenreMapper(where)
    catalog: MovieCatalog = {}
    titles = []
    reader = csv.reader(decoded.lines)
    header = next(reader, None)
    if header is None or [h.strip() for h in header[:3]] != ["movieId", "title", "genres"]:
        raise DataError(
            f"malformed header: expected movieId,title,genres, got {header!r}", path=where, line=1
        )
    for fields in reader:
        number = reader.line_num
        if not fields or not "".join(fields).strip():
            continue
        if len(fields) != 3:
            raise DataError(
                f"malformed line: expected 3 fields movieId,title,genres (quote titles that "
                f"hold commas), got {len(fields)}: {','.join(fields)[:80]!r}",
                path=where,
                line=number,
            )
        movie = _movie_id(fields[0], "movieId", where, number)
        catalog[movie] = (fields[1], genres(fields[2].split("|")))
        titles.append((number, fields[1]))
    genres.warn()
    warn_control_chars(where, titles, what="title")
    return catalog


def _read_ml100k_movies(bundle: Bundle) -> MovieCatalog:
    """`u.item`: id|title|release date|video date|URL|19 genre flags (ISO-8859-1)."""
    where = bundle.describe("u.item")
    decoded = decode_lines(bundle.read("u.item"), where, expected=LATIN1)
    genres = GenreMapper(where)
    catalog: MovieCatalog = {}
    width = 5 + len(ML100K_GENRES)
    titles = []
    for number, line in decoded.numbered():
        fields = line.split("|")
        if len(fields) != width:
            raise DataError(
                f"malformed line: expected {width} '|'-separated fields (id, title, dates, URL and "
                f"{len(ML100K_GENRES)} genre flags), got {len(fields)}",
                path=where,
                line=number,
            )
        movie = _movie_id(fields[0], "movie id", where, number)
        flags = fields[5:]
        if any(f not in ("0", "1") for f in flags):
            raise DataError("malformed line: genre flags must be 0 or 1", path=where, line=number)
        listed = [g for g, f in zip(ML100K_GENRES, flags, strict=True) if f == "1"]
        catalog[movie] = (fields[1], genres(listed))
        titles.append((number, fields[1]))
    warn_control_chars(where, titles, what="title")
    return catalog


_DAT = [NumericColumn("UserID"), NumericColumn("MovieID"), NumericColumn("Rating", False),
        NumericColumn("Timestamp")]  # fmt: skip
_CSV = [NumericColumn("userId"), NumericColumn("movieId"), NumericColumn("rating", False),
        NumericColumn("timestamp")]  # fmt: skip
_UDATA = [NumericColumn("user id"), NumericColumn("item id"), NumericColumn("rating", False),
          NumericColumn("timestamp")]  # fmt: skip


def _read_ratings(
    bundle: Bundle, name: str, sep: str, columns: list[NumericColumn], catalog: MovieCatalog,
    *, header: bool = False,
) -> tuple[np.ndarray, ...]:  # fmt: skip
    where = bundle.describe(name)
    raw = bundle.read(name)
    table = read_numeric_table(raw, where, sep=sep, columns=columns, header=header)
    users, movies, ratings, times = (table[c.name] for c in columns)
    known = np.fromiter(catalog, np.int64, len(catalog))
    unknown = np.flatnonzero(~pd.Series(movies).isin(known).to_numpy())
    if unknown.size:
        row = int(unknown[0])
        raise DataError(
            f"unknown movie id {movies[row]}: it is rated here but missing from the movie list"
            + (f" ({unknown.size} such ratings)" if unknown.size > 1 else ""),
            path=where,
            line=line_of_row(raw.removeprefix(b"\xef\xbb\xbf"), row, header=header),
        )
    return users, movies, ratings, times


def _check_ml1m_users(bundle: Bundle, rated_users: np.ndarray) -> None:
    where = bundle.describe("users.dat")
    known = set()
    for number, line in decode_lines(bundle.read("users.dat"), where, expected=LATIN1).numbered():
        fields = line.split("::")
        if len(fields) != 5:
            raise DataError(
                f"malformed line: expected UserID::Gender::Age::Occupation::Zip-code, got {line[:80]!r}",
                path=where,
                line=number,
            )
        known.add(_movie_id(fields[0], "UserID", where, number))
    unknown = sorted(set(pd.unique(rated_users).tolist()) - known)
    if unknown:
        raise DataError(
            f"ratings.dat rates {len(unknown)} user id(s) missing from users.dat, e.g. {unknown[:5]}",
            path=where,
        )


def _read_bundle(bundle: Bundle, release: str) -> Interactions:
    if release in ("ml-1m", "ml-10m"):
        catalog = _read_dat_movies(bundle, LATIN1 if release == "ml-1m" else UTF8)
        users, movies, ratings, times = _read_ratings(bundle, "ratings.dat", "::", _DAT, catalog)
        if bundle.exists("users.dat"):
            _check_ml1m_users(bundle, users)
        label = release
    elif release == "csv":
        catalog = _read_csv_movies(bundle)
        users, movies, ratings, times = _read_ratings(
            bundle, "ratings.csv", ",", _CSV, catalog, header=True
        )
        label = bundle.name if bundle.name.startswith("ml-") else "movielens-csv"
    else:
        catalog = _read_ml100k_movies(bundle)
        users, movies, ratings, times = _read_ratings(bundle, "u.data", "\t", _UDATA, catalog)
        label = "ml-100k"
    return Interactions(
        source=f"{label}:{bundle.root}",
        users=users,
        items=movies,
        catalog=catalog,
        ratings=ratings,
        timestamps=times,
        report={"release": label},
    )


def read_grouplens(path: str | Path) -> Interactions:
    """Read a GroupLens release from its zip or folder, detecting which it is."""
    bundle, release, archive = open_bundle(Path(path).expanduser())
    try:
        return _read_bundle(bundle, release)
    finally:
        if archive is not None:
            archive.close()
