"""`WatchData`: the boolean user x movie watch matrix with everything needed to explain it.

The canonical form is sparse: one (user index, movie index) pair per watch, sorted by user
then movie, with duplicates removed. Users and movies are numbered in *factorized order*
(order of first appearance in the ratings, with `pandas.factorize` as in the reference),
and only movies with at least one rating become columns.

Ids are int64 (MovieLens, and generic files whose ids are all decimal integers) or text
(numpy unicode arrays); either way the public id is the text (`str(id)`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from training.data.errors import DataError
from training.data.genre_mapping import NO_GENRE

__all__ = ["Catalog", "IdKind", "SyntheticTruth", "WatchData", "build_watch_data", "factorize"]

IdKind = Literal["int", "str"]
# {movie id: (title, genres)}; ids as in the ratings (int or str).
Catalog = Mapping[Any, tuple[str, tuple[str, ...]]]


class SyntheticTruth(NamedTuple):
    """The latent variables that generated a synthetic watch matrix."""

    user_embeddings: np.ndarray  # [users, D]
    user_bias: np.ndarray  # [users]
    movie_embeddings: np.ndarray  # [movies, D]
    movie_bias: np.ndarray  # [movies]

    def logits(self) -> np.ndarray:
        """True logits U V^T + u + v, [users, movies]."""
        return (
            self.user_embeddings @ self.movie_embeddings.T
            + self.user_bias[:, None]
            + self.movie_bias[None, :]
        )

    def probabilities(self) -> np.ndarray:
        """True watch probabilities sigmoid(logits), [users, movies]."""
        return 1.0 / (1.0 + np.exp(-self.logits()))


@dataclass(frozen=True, eq=False)
class WatchData:
    """A watch matrix in sparse form, with ids, titles and genres.

    Attributes:
        source: human-readable description of where the data came from.
        user_ids: original user ids, in factorized order, int64 or str [users].
        movie_ids: original movie ids, in factorized order, int64 or str [movies].
        titles: movie titles, [movies].
        genres: every genre of each movie, [movies] of tuples (never empty).
        user_index: factorized user index of each watch, int32 [watches].
        movie_index: factorized movie index of each watch, int32 [watches].
        timestamps: time of each watch (seconds since epoch) when the source has them.
        truth: the generating latent variables, for synthetic data only.
        report: what loading did (filters and what each removed), JSON-ready.
    """

    source: str
    user_ids: np.ndarray
    movie_ids: np.ndarray
    titles: tuple[str, ...]
    genres: tuple[tuple[str, ...], ...]
    user_index: np.ndarray
    movie_index: np.ndarray
    timestamps: np.ndarray | None = None
    truth: SyntheticTruth | None = field(default=None, repr=False)
    report: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        n, m = len(self.user_ids), len(self.movie_ids)
        if len(self.titles) != m or len(self.genres) != m:
            raise ValueError("titles and genres must have one entry per movie")
        if self.user_index.shape != self.movie_index.shape:
            raise ValueError("user_index and movie_index must have the same length")
        if self.user_index.size and (
            self.user_index.min() < 0
            or self.user_index.max() >= n
            or self.movie_index.min() < 0
            or self.movie_index.max() >= m
        ):
            raise ValueError("watch indices out of range")

    @property
    def user_id_kind(self) -> IdKind:
        return "int" if self.user_ids.dtype.kind in "iu" else "str"

    @property
    def movie_id_kind(self) -> IdKind:
        return "int" if self.movie_ids.dtype.kind in "iu" else "str"

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_movies(self) -> int:
        return len(self.movie_ids)

    @property
    def num_watches(self) -> int:
        return int(self.user_index.size)

    @property
    def density(self) -> float:
        return self.num_watches / max(1, self.num_users * self.num_movies)

    @property
    def first_genre(self) -> tuple[str, ...]:
        """The first listed genre of every movie (the reference's choice)."""
        return tuple(g[0] for g in self.genres)

    @property
    def watch_counts(self) -> np.ndarray:
        """Number of movies each user watched, int64 [users]."""
        return np.bincount(self.user_index, minlength=self.num_users).astype(np.int64)

    @property
    def movie_counts(self) -> np.ndarray:
        """Number of users who watched each movie, int64 [movies]."""
        return np.bincount(self.movie_index, minlength=self.num_movies).astype(np.int64)

    def dense(self, dtype: type | np.dtype = bool) -> np.ndarray:
        """The whole watch matrix W, [users, movies]; W[i, j] is true when user i watched
        movie j. For small data and tests: training and evaluation use `rows`."""
        return self.rows(0, self.num_users, dtype)

    def rows(self, start: int, stop: int, dtype: type | np.dtype = bool) -> np.ndarray:
        """Rows [start, stop) of W, [stop - start, movies]; rows past the last user are
        zeros (padding)."""
        first, last = np.searchsorted(self.user_index, [start, stop])
        w = np.zeros((stop - start, self.num_movies), dtype=dtype)
        w[self.user_index[first:last] - start, self.movie_index[first:last]] = 1
        return w

    def watched_by(self, user: int) -> np.ndarray:
        """Factorized movie indices watched by factorized user `user`, sorted."""
        lo, hi = np.searchsorted(self.user_index, [user, user + 1])
        return self.movie_index[lo:hi]

    def fingerprint(self) -> str:
        """sha256 of the matrix's shape and watches: equal fingerprints mean equal matrices."""
        h = hashlib.sha256()
        h.update(np.array([self.num_users, self.num_movies], np.int64).tobytes())
        h.update(self.user_index.astype(np.int32).tobytes())
        h.update(self.movie_index.astype(np.int32).tobytes())
        return h.hexdigest()


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes and uniques in order of first appearance (`pandas.factorize`, as the reference)."""
    codes, uniques = pd.factorize(np.asarray(values), sort=False)
    return codes.astype(np.int64), np.asarray(uniques)


def _last_of_each_pair(key: np.ndarray, timestamps: np.ndarray | None) -> np.ndarray:
    """Row indices sorted by `key`, one per distinct key: the row with the latest timestamp,
    and among those (or without timestamps) the last in file order. One unstable sort
    (numpy's vectorized quicksort); the choice within a key does not depend on it."""
    order = np.argsort(key)
    sorted_key = key[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_key[1:] != sorted_key[:-1])))
    if starts.size == key.size:  # no repeated pair: the common case
        return order
    candidates = order
    if timestamps is not None:
        stamps = np.asarray(timestamps)[order]
        latest = np.maximum.reduceat(stamps, starts)
        run = np.repeat(np.arange(starts.size), np.diff(np.append(starts, key.size)))
        candidates = np.where(stamps == latest[run], order, -1)
    return np.maximum.reduceat(candidates, starts)


def _id_array(uniques: np.ndarray) -> np.ndarray:
    """int64 for integer ids, a numpy unicode array for text ids."""
    if uniques.dtype.kind in "iu":
        return uniques.astype(np.int64)
    return uniques.astype(str) if uniques.size else np.zeros(0, "<U1")


def build_watch_data(
    *,
    source: str,
    rating_user_ids: np.ndarray,
    rating_movie_ids: np.ndarray,
    movie_catalog: Catalog | None,
    rating_timestamps: np.ndarray | None = None,
    truth: SyntheticTruth | None = None,
    report: Mapping[str, Any] | None = None,
) -> WatchData:
    """Build `WatchData` from raw rating rows and a catalogue {movie id: (title, genres)}.

    Ids are int64 or text arrays [ratings]. Ratings must already be validated against the
    catalogue; without one (None), or for a movie it lacks, the title is the id and the
    genre `(no genres listed)`. Repeated (user, movie) pairs become one watch; with
    timestamps, the latest one is kept.
    """
    if len(rating_user_ids) == 0:
        raise DataError(f"{source}: the dataset has no ratings, so there is nothing to fit")
    user_codes, user_ids = factorize(rating_user_ids)
    movie_codes, movie_ids = factorize(rating_movie_ids)
    key = user_codes * len(movie_ids) + movie_codes
    keep = _last_of_each_pair(key, rating_timestamps)
    titles = []
    genres = []
    catalog = movie_catalog or {}
    for mid in movie_ids.tolist():
        title, movie_genres = catalog.get(mid) or (str(mid), ())
        titles.append(title)
        genres.append(tuple(movie_genres) or (NO_GENRE,))
    timestamps = None
    if rating_timestamps is not None:
        timestamps = np.asarray(rating_timestamps, np.int64)[keep]
    return WatchData(
        source=source,
        user_ids=_id_array(user_ids),
        movie_ids=_id_array(movie_ids),
        titles=tuple(titles),
        genres=tuple(genres),
        user_index=user_codes[keep].astype(np.int32),
        movie_index=movie_codes[keep].astype(np.int32),
        timestamps=timestamps,
        truth=truth,
        report=dict(report or {}),
    )
