"""Decode MovieLens `tf.train.Example` records in bulk, keeping only what `WatchData` needs.

tfds stores every rating as one serialized `tf.train.Example` with a dozen features (zip
code, occupation, age bucket, ...). Decoding them all through tfds's feature decoders costs
about 0.2 ms a record; here each record is parsed once with protobuf against the public
`tf.train.Example` schema (the copy tfds ships, compiled for protobuf, so TensorFlow is not
needed) and only user id, movie id and timestamp are read, plus the title and genres of each
movie the first time it appears.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

from training.data.errors import DataError
from training.data.genre_mapping import GenreMapper
from training.data.watch import WatchData, build_watch_data

__all__ = ["REQUIRED_FEATURES", "Ratings", "decode_examples", "to_watch_data"]

# The features of tfds's `movielens/*-ratings` configs that the watch matrix needs.
REQUIRED_FEATURES = ("user_id", "movie_id", "timestamp", "movie_title", "movie_genres")


class Ratings(NamedTuple):
    """The decoded columns of a ratings split.

    Attributes:
        user_ids: the public user id of each rating, bytes [ratings] (tfds stores them as text).
        movie_ids: the public movie id of each rating, bytes [ratings].
        timestamps: seconds since the epoch, int64 [ratings].
        catalog: {movie id: (title, genre names)} for every rated movie.
    """

    user_ids: np.ndarray
    movie_ids: np.ndarray
    timestamps: np.ndarray
    catalog: dict[bytes, tuple[str, tuple[str, ...]]]


def _example_class() -> Any:
    # tfds ships the public tf.train.Example schema compiled for protobuf (its NumPy-only
    # example parser uses it), so no TensorFlow is needed to parse the records.
    from tensorflow_datasets.proto import tf_example_pb2

    return tf_example_pb2.Example


def decode_examples(
    chunks: Iterable[Sequence[bytes]],
    *,
    genre_names: Sequence[str],
    where: Callable[[int], str],
    on_chunk: Callable[[int], None] | None = None,
) -> Ratings:
    """Decode serialized MovieLens examples, chunk by chunk.

    Args:
        chunks: serialized `tf.train.Example` records, in any grouping.
        genre_names: the `movie_genres` ClassLabel names, in label order.
        where: record number -> text naming the file and record, for error messages.
        on_chunk: called with the size of each decoded chunk (for progress).

    Raises:
        DataError: a record is not a `tf.train.Example`, lacks one of `REQUIRED_FEATURES`, or
            has a genre label outside `genre_names`.
    """
    from google.protobuf.message import DecodeError

    parse = _example_class().FromString
    users: list[bytes] = []
    movies: list[bytes] = []
    stamps: list[int] = []
    raw_catalog: dict[bytes, tuple[bytes, list[int]]] = {}
    add_user, add_movie, add_stamp = users.append, movies.append, stamps.append
    first = 0  # the number of the chunk's first record in the split
    for chunk in chunks:
        i = 0
        try:
            for i, raw in enumerate(chunk):  # noqa: B007 (i names the record on error)
                feature = parse(raw).features.feature
                add_user(feature["user_id"].bytes_list.value[0])
                movie = feature["movie_id"].bytes_list.value[0]
                add_movie(movie)
                add_stamp(feature["timestamp"].int64_list.value[0])
                if movie not in raw_catalog:
                    raw_catalog[movie] = (
                        feature["movie_title"].bytes_list.value[0],
                        list(feature["movie_genres"].int64_list.value),
                    )
        except (DecodeError, IndexError) as e:
            raise DataError(
                f"{where(first + i)}: not a MovieLens rating record (a tf.train.Example with "
                f"{', '.join(REQUIRED_FEATURES)}): {type(e).__name__}: {e}; prepare the "
                "dataset again"
            ) from None
        first += len(chunk)
        if on_chunk is not None:
            on_chunk(len(chunk))
    return Ratings(
        user_ids=np.array(users, dtype=bytes),
        movie_ids=np.array(movies, dtype=bytes),
        timestamps=np.array(stamps, dtype=np.int64),
        catalog=_catalog(raw_catalog, genre_names),
    )


def _catalog(
    raw: dict[bytes, tuple[bytes, list[int]]], genre_names: Sequence[str]
) -> dict[bytes, tuple[str, tuple[str, ...]]]:
    catalog = {}
    to_genres = GenreMapper("movie_genres")
    for movie, (title, labels) in raw.items():
        if any(not 0 <= label < len(genre_names) for label in labels):
            raise DataError(
                f"movie {movie.decode(errors='replace')}: genre label outside the "
                f"{len(genre_names)} names of movie_genres: {labels}"
            )
        genres = to_genres(genre_names[label] for label in labels)
        catalog[movie] = (title.decode("utf-8"), genres)
    to_genres.warn()
    return catalog


def _integer_ids(ids: np.ndarray, what: str, source: str) -> np.ndarray:
    """tfds stores MovieLens ids as text; the GroupLens readers give them as integers."""
    try:
        return ids.astype(np.int64)
    except ValueError:
        bad = next(i for i in ids.tolist() if not i.strip().isdigit())
        raise DataError(f"{source}: {what} {bad!r} is not an integer") from None


def to_watch_data(ratings: Ratings, *, source: str) -> WatchData:
    """Build `WatchData` the way the GroupLens readers do (factorized in order of first
    appearance, repeated pairs counted once, the latest timestamp kept)."""
    movie_ids = _integer_ids(ratings.movie_ids, "movie_id", source)
    catalog_ids = _integer_ids(np.array(list(ratings.catalog), dtype=bytes), "movie_id", source)
    catalog = dict(zip(catalog_ids.tolist(), ratings.catalog.values(), strict=True))
    return build_watch_data(
        source=source,
        rating_user_ids=_integer_ids(ratings.user_ids, "user_id", source),
        rating_movie_ids=movie_ids,
        movie_catalog=catalog,
        rating_timestamps=ratings.timestamps,
    )
