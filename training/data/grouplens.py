"""Readers for the GroupLens MovieLens files users download: ml-1m and ml-100k.

Both accept the `.zip` from GroupLens or its extracted folder. Every problem raises
`DataError` naming the file and line; nothing half-built is returned.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from training.data.errors import DataError
from training.data.genres import normalize_genre
from training.data.watch import WatchData, build_watch_data

ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)

ML1M_FILES = ("ratings.dat", "movies.dat")
ML100K_FILES = ("u.data", "u.item")


class Bundle:
    """The files of one dataset, in a folder or inside a zip archive."""

    def __init__(self, root: Path, *, archive: zipfile.ZipFile | None = None, prefix: str = ""):
        self.root = root
        self.archive = archive
        self.prefix = prefix

    def describe(self, name: str) -> str:
        if self.archive is not None:
            return f"{self.root}:{self.prefix}{name}"
        return str(self.root / name)

    def exists(self, name: str) -> bool:
        if self.archive is not None:
            return f"{self.prefix}{name}" in self.archive.namelist()
        return (self.root / name).is_file()

    def read(self, name: str) -> bytes:
        if not self.exists(name):
            raise DataError(
                "file not found; a GroupLens dataset needs it (download the dataset again "
                "from grouplens.org if it is incomplete)",
                path=self.describe(name),
            )
        if self.archive is not None:
            return self.archive.read(f"{self.prefix}{name}")
        return (self.root / name).read_bytes()


def _decode(raw: bytes, where: str, *, ascii_only: bool) -> str:
    """Decode GroupLens text (ISO-8859-1; ASCII for numeric files) with clear errors."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw[:4096]:
        raise DataError(
            "wrong encoding: the file looks like UTF-16; GroupLens files are ISO-8859-1 text. "
            "Use the original file, or re-save it as ISO-8859-1",
            path=where,
        )
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if ascii_only:
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as e:
            line = raw.count(b"\n", 0, e.start) + 1
            raise DataError(
                f"wrong encoding: byte 0x{raw[e.start]:02x} is not ASCII; this file holds only "
                "numbers and separators",
                path=where,
                line=line,
            ) from None
    try:
        # A file re-saved as UTF-8 decodes strictly; the original is ISO-8859-1.
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("iso-8859-1")


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if line.strip():
            yield number, line


def _int(field: str, what: str, where: str, line: int) -> int:
    try:
        return int(field)
    except ValueError:
        raise DataError(
            f"malformed line: {what} {field!r} is not an integer", path=where, line=line
        ) from None


def _read_ratings(
    bundle: Bundle, name: str, sep: str, catalog: dict[int, tuple[str, tuple[str, ...]]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    where = bundle.describe(name)
    text = _decode(bundle.read(name), where, ascii_only=True)
    users: list[int] = []
    movies: list[int] = []
    times: list[int] = []
    for number, line in _lines(text):
        fields = line.split(sep)
        if len(fields) != 4:
            raise DataError(
                f"malformed line: expected 4 fields UserID{sep}MovieID{sep}Rating{sep}Timestamp, "
                f"got {len(fields)}: {line[:80]!r}",
                path=where,
                line=number,
            )
        user = _int(fields[0], "UserID", where, number)
        movie = _int(fields[1], "MovieID", where, number)
        _int(fields[2], "Rating", where, number)
        stamp = _int(fields[3], "Timestamp", where, number)
        if movie not in catalog:
            raise DataError(
                f"unknown movie id {movie}: it is rated here but missing from the movie list",
                path=where,
                line=number,
            )
        users.append(user)
        movies.append(movie)
        times.append(stamp)
    if not users:
        raise DataError("the ratings file is empty, so there is nothing to fit", path=where)
    return np.array(users, np.int64), np.array(movies, np.int64), np.array(times, np.int64)


def _read_ml1m_movies(bundle: Bundle) -> dict[int, tuple[str, tuple[str, ...]]]:
    where = bundle.describe("movies.dat")
    text = _decode(bundle.read("movies.dat"), where, ascii_only=False)
    catalog: dict[int, tuple[str, tuple[str, ...]]] = {}
    for number, line in _lines(text):
        fields = line.split("::")
        if len(fields) != 3:
            raise DataError(
                f"malformed line: expected MovieID::Title::Genres, got {line[:80]!r}",
                path=where,
                line=number,
            )
        movie = _int(fields[0], "MovieID", where, number)
        genres = tuple(normalize_genre(g) for g in fields[2].split("|") if g)
        catalog[movie] = (fields[1], genres)
    return catalog


def _check_ml1m_users(bundle: Bundle, rated_users: np.ndarray) -> None:
    if not bundle.exists("users.dat"):
        return
    where = bundle.describe("users.dat")
    text = _decode(bundle.read("users.dat"), where, ascii_only=False)
    known = set()
    for number, line in _lines(text):
        fields = line.split("::")
        if len(fields) != 5:
            raise DataError(
                f"malformed line: expected UserID::Gender::Age::Occupation::Zip-code, got {line[:80]!r}",
                path=where,
                line=number,
            )
        known.add(_int(fields[0], "UserID", where, number))
    unknown = sorted(set(np.unique(rated_users).tolist()) - known)
    if unknown:
        raise DataError(
            f"ratings.dat rates {len(unknown)} user id(s) missing from users.dat, e.g. {unknown[:5]}",
            path=where,
        )


def _read_ml100k_movies(bundle: Bundle) -> dict[int, tuple[str, tuple[str, ...]]]:
    where = bundle.describe("u.item")
    text = _decode(bundle.read("u.item"), where, ascii_only=False)
    catalog: dict[int, tuple[str, tuple[str, ...]]] = {}
    width = 5 + len(ML100K_GENRES)
    for number, line in _lines(text):
        fields = line.split("|")
        if len(fields) != width:
            raise DataError(
                f"malformed line: expected {width} '|'-separated fields (id, title, dates, URL and "
                f"{len(ML100K_GENRES)} genre flags), got {len(fields)}",
                path=where,
                line=number,
            )
        movie = _int(fields[0], "movie id", where, number)
        flags = fields[5:]
        if any(f not in ("0", "1") for f in flags):
            raise DataError("malformed line: genre flags must be 0 or 1", path=where, line=number)
        genres = tuple(
            normalize_genre(g) for g, f in zip(ML100K_GENRES, flags, strict=True) if f == "1"
        )
        catalog[movie] = (fields[1], genres)
    return catalog


def read_ml1m(bundle: Bundle) -> WatchData:
    """Read GroupLens ml-1m (`ratings.dat`, `movies.dat`, optional `users.dat`)."""
    catalog = _read_ml1m_movies(bundle)
    users, movies, times = _read_ratings(bundle, "ratings.dat", "::", catalog)
    _check_ml1m_users(bundle, users)
    return build_watch_data(
        source=f"ml-1m:{bundle.root}",
        rating_user_ids=users,
        rating_movie_ids=movies,
        movie_catalog=catalog,
        rating_timestamps=times,
    )


def read_ml100k(bundle: Bundle) -> WatchData:
    """Read GroupLens ml-100k (`u.data` tab-separated, `u.item` with 19 genre flags)."""
    catalog = _read_ml100k_movies(bundle)
    users, movies, times = _read_ratings(bundle, "u.data", "\t", catalog)
    return build_watch_data(
        source=f"ml-100k:{bundle.root}",
        rating_user_ids=users,
        rating_movie_ids=movies,
        movie_catalog=catalog,
        rating_timestamps=times,
    )


def _zip_prefix(archive: zipfile.ZipFile, marker: str) -> str | None:
    for name in archive.namelist():
        if name == marker or name.endswith("/" + marker):
            return name[: len(name) - len(marker)]
    return None


def read_grouplens(path: str | Path) -> WatchData:
    """Read an ml-1m or ml-100k dataset from its zip or folder, detecting which it is."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(
            "no such file or folder; give the path of a GroupLens ml-1m or ml-100k .zip or its "
            "extracted folder",
            path=path,
        )
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise DataError("not a zip archive or a folder of GroupLens files", path=path)
        with zipfile.ZipFile(path) as archive:
            for marker, reader in (("ratings.dat", read_ml1m), ("u.data", read_ml100k)):
                prefix = _zip_prefix(archive, marker)
                if prefix is not None:
                    return reader(Bundle(path, archive=archive, prefix=prefix))
            listing = ", ".join(archive.namelist()[:8]) or "nothing"
            raise DataError(
                "the zip holds no ml-1m folder (ratings.dat, movies.dat) and no ml-100k folder "
                f"(u.data, u.item); it holds: {listing}",
                path=path,
            )
    for folder in (path, path / "ml-1m", path / "ml-100k"):
        if (folder / "ratings.dat").is_file() or (folder / "movies.dat").is_file():
            return read_ml1m(Bundle(folder))
        if (folder / "u.data").is_file() or (folder / "u.item").is_file():
            return read_ml100k(Bundle(folder))
    raise DataError(
        "the folder holds neither ml-1m files (ratings.dat, movies.dat) nor ml-100k files "
        "(u.data, u.item)",
        path=path,
    )
