"""The files of one version and the checks on names supplied by callers."""

from __future__ import annotations

import re

__all__ = [
    "EXTRA_DIR",
    "MOVIES",
    "MOVIE_BIAS",
    "MOVIE_EMBEDDINGS",
    "MOVIE_IDS",
    "REQUIRED",
    "SAMPLE_NAMES",
    "TRACES_DIR",
    "USERS",
    "USER_IDS",
    "WATCHED_INDICES",
    "WATCHED_INDPTR",
    "check_relative_name",
]

SAMPLE_NAMES = ("user_embeddings", "user_bias", "movie_embeddings", "movie_bias")

USERS = "users.npy"  # float32 [N, S*C, D+1]: user i's embedding (:D) and bias (D), user-major
MOVIE_EMBEDDINGS = "movie_embeddings.npy"  # float32 [S*C, M, D]
MOVIE_BIAS = "movie_bias.npy"  # float32 [S*C, M]
USER_IDS = "user_ids.npy"  # text <U [N] in factorized order (format 1: int64)
MOVIE_IDS = "movie_ids.npy"  # text <U [M] in factorized order (format 1: int64)
WATCHED_INDPTR = "watched_indptr.npy"  # int64 [N+1], CSR row pointers
WATCHED_INDICES = "watched_indices.npy"  # int32 [nnz], sorted movie indices per user
MOVIES = "movies.json"  # {"titles": [...], "genres": [[...]], "first_genre": [...]}
TRACES_DIR = "traces"  # traces/<name>.npy
EXTRA_DIR = "files"  # files/<name> (extra files given to publish_posterior)

REQUIRED = (
    USERS,
    MOVIE_EMBEDDINGS,
    MOVIE_BIAS,
    USER_IDS,
    MOVIE_IDS,
    WATCHED_INDPTR,
    WATCHED_INDICES,
    MOVIES,
)

_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def check_relative_name(name: str) -> str | None:
    """Why `name` is not a safe relative file name like "plots/trace.png" (None when it is)."""
    if not isinstance(name, str) or not name:
        return "it is empty"
    parts = name.split("/")
    for part in parts:
        if part in (".", "..") or not _SEGMENT.match(part):
            return (
                "use '/'-separated parts of letters, digits, '_', '-', '.' "
                "(no leading '.', no '..', no absolute paths)"
            )
    return None
