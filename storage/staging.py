"""Staging a version: its files written, hashed and fsync'd in a temp folder.

What a version holds (`storage.files`) is checked here and written in row blocks of about
16 MiB (so a full-size posterior never needs a second copy in memory): `users.npy`
[users, samples, latent_dim + 1] transposed from the samples, the movie arrays, the ids
as text, the watched lists as CSR, `movies.json`, traces and extra files. Each file's
sha256 and size become its manifest entry. Naming the version and moving it into place is
`storage.publish`'s part.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from storage import files as F
from storage import fsio
from storage import manifest as mf
from storage.errors import StoreError
from storage.id_arrays import ids_as_text

__all__ = [
    "FittedData",
    "Shapes",
    "VersionWriter",
    "check_extras",
    "check_samples",
    "write_payload",
]


class FittedData(Protocol):
    """What publishing needs of the data a posterior was fitted to (`training.data.WatchData`
    has it; storage does not import training).

    `user_index`/`movie_index` [watches] are 0-based row/column indices of each watch;
    `user_ids` [users] and `movie_ids` [movies] the public ids; `titles`, `genres` and
    `first_genre` are per movie.
    """

    @property
    def source(self) -> str: ...
    @property
    def user_ids(self) -> np.ndarray: ...
    @property
    def movie_ids(self) -> np.ndarray: ...
    @property
    def titles(self) -> tuple[str, ...]: ...
    @property
    def genres(self) -> tuple[tuple[str, ...], ...]: ...
    @property
    def first_genre(self) -> tuple[str, ...]: ...
    @property
    def user_index(self) -> np.ndarray: ...
    @property
    def movie_index(self) -> np.ndarray: ...
    @property
    def num_users(self) -> int: ...
    @property
    def num_movies(self) -> int: ...
    @property
    def num_watches(self) -> int: ...
    def fingerprint(self) -> str: ...


_BLOCK_BYTES = 16 << 20  # rows per block so each staged block is about 16 MiB


class Shapes(NamedTuple):
    """Sizes of a posterior: draws x chains samples of users x movies at latent_dim."""

    draws: int
    chains: int
    users: int
    movies: int
    latent_dim: int

    @property
    def samples(self) -> int:
        return self.draws * self.chains


def check_samples(
    samples: Mapping[str, Any], data: FittedData
) -> tuple[dict[str, np.ndarray], Shapes]:
    """The four sample arrays as float32 with consistent reference shapes, or StoreError."""
    missing = [n for n in F.SAMPLE_NAMES if n not in samples]
    extra = [n for n in samples if n not in F.SAMPLE_NAMES]
    if missing or extra:
        raise StoreError(
            f"samples must have exactly the keys {F.SAMPLE_NAMES}; missing {missing}, unexpected {extra}"
        )
    arrays = {}
    for name in F.SAMPLE_NAMES:
        array = np.asarray(samples[name])
        if not np.issubdtype(array.dtype, np.floating):
            raise StoreError(f"samples[{name!r}] has dtype {array.dtype}; expected float32")
        arrays[name] = array.astype(np.float32, copy=False)
    ue, me = arrays["user_embeddings"], arrays["movie_embeddings"]
    if ue.ndim != 4 or ue.shape[-1] < 1 or min(ue.shape) < 1:
        raise StoreError(f"user_embeddings must be [draws, chains, users, D]; got {ue.shape}")
    s, c, n, d = ue.shape
    m = me.shape[2] if me.ndim == 4 else -1
    expected = {
        "user_bias": (s, c, n),
        "movie_embeddings": (s, c, m, d),
        "movie_bias": (s, c, m),
    }
    for name, shape in expected.items():
        if arrays[name].shape != shape or m < 1:
            raise StoreError(
                f"samples[{name!r}] has shape {arrays[name].shape}; expected {shape} to match "
                f"user_embeddings {ue.shape} (reference shapes [S, C, ...])"
            )
    if (n, m) != (data.num_users, data.num_movies):
        raise StoreError(
            f"samples cover {n} users x {m} movies but the data has "
            f"{data.num_users} x {data.num_movies}; publish the data the model was fitted to"
        )
    return arrays, Shapes(s, c, n, m, d)


def _rows_per_block(row_bytes: int) -> int:
    return max(1, _BLOCK_BYTES // max(1, row_bytes))


def _user_blocks(ue: np.ndarray, ub: np.ndarray, shapes: Shapes) -> Iterator[np.ndarray]:
    """users.npy rows: [users, S*C, D+1], embedding then bias, sample index k = s * C + c."""
    k, n, d = shapes.samples, shapes.users, shapes.latent_dim
    uk, bk = ue.reshape(k, n, d), ub.reshape(k, n)
    step = _rows_per_block(k * (d + 1) * 4)
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        block = np.empty((i1 - i0, k, d + 1), np.float32)
        block[:, :, :d] = uk[:, i0:i1].transpose(1, 0, 2)
        block[:, :, d] = bk[:, i0:i1].T
        yield block


def _row_blocks(array: np.ndarray) -> Iterator[np.ndarray]:
    step = _rows_per_block(array[:1].nbytes)
    for i0 in range(0, array.shape[0], step):
        yield array[i0 : i0 + step]


class VersionWriter:
    """Writes files under a temp folder and records their manifest entries."""

    def __init__(self, root: Path):
        self.root = root
        self.entries: dict[str, dict] = {}
        self.dirs: set[Path] = {root}

    def _path(self, name: str) -> Path:
        path = self.root / name
        if path.parent not in self.dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            for parent in path.relative_to(self.root).parents:
                self.dirs.add(self.root / parent)
        return path

    def array(self, name: str, array: np.ndarray) -> None:
        """Write a whole array as `.npy`, in row blocks."""
        blocks = _row_blocks(array) if array.ndim else iter([array.reshape(1)])
        self.blocks(name, tuple(array.shape), array.dtype, blocks)

    def blocks(
        self, name: str, shape: tuple[int, ...], dtype: np.dtype, blocks: Iterator[np.ndarray]
    ) -> None:
        """Write an array given as blocks along its first axis as `.npy`."""
        chunks: Iterator[bytes | memoryview]
        if not shape:  # a scalar: one block of one element, written as its raw bytes
            chunks = iter([fsio.npy_header((), dtype), next(blocks).astype(dtype).tobytes()])
        else:
            chunks = fsio.npy_chunks(shape, dtype, blocks)
        sha, size = fsio.write_chunks(self._path(name), chunks)
        self.entries[name] = mf.array_entry(shape, dtype, sha, size)

    def raw(self, name: str, content: bytes) -> None:
        sha, size = fsio.write_chunks(self._path(name), [content])
        self.entries[name] = mf.file_entry(sha, size)

    def sync_dirs(self) -> None:
        for directory in sorted(self.dirs, key=lambda p: len(p.parts), reverse=True):
            fsio.fsync_dir(directory)


def _csr(data: FittedData) -> tuple[np.ndarray, np.ndarray]:
    indptr = np.zeros(data.num_users + 1, np.int64)
    np.cumsum(np.bincount(data.user_index, minlength=data.num_users), out=indptr[1:])
    return indptr, np.ascontiguousarray(data.movie_index, dtype=np.int32)


def check_extras(traces: Mapping[str, Any], files: Mapping[str, bytes]) -> dict[str, np.ndarray]:
    """The traces as numeric arrays; StoreError for unsafe names or contents."""
    arrays = {}
    for name, trace in traces.items():
        why = F.check_relative_name(name)
        if why is None and "/" in name:
            why = "trace names cannot contain '/'"
        if why:
            raise StoreError(f"trace name {name!r} is not allowed: {why}")
        array = np.ascontiguousarray(np.asarray(trace))
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise StoreError(f"trace {name!r} has dtype {array.dtype}; traces must be numeric")
        arrays[name] = array
    for name, content in files.items():
        why = F.check_relative_name(name)
        if why:
            raise StoreError(f"file name {name!r} is not allowed: {why}")
        if not isinstance(content, bytes | bytearray | memoryview):
            raise StoreError(f"files[{name!r}] must be bytes, not {type(content).__name__}")
    return arrays


def write_payload(
    writer: VersionWriter,
    arrays: dict[str, np.ndarray],
    shapes: Shapes,
    data: FittedData,
    traces: Mapping[str, np.ndarray],
    files: Mapping[str, bytes],
) -> None:
    """Write every file of a version but its manifest through `writer`: the samples in the
    store's shapes, ids as text, the watched lists as CSR, movies.json, traces, extra files."""
    k, n, m, d = shapes.samples, shapes.users, shapes.movies, shapes.latent_dim
    users_blocks = _user_blocks(arrays["user_embeddings"], arrays["user_bias"], shapes)
    writer.blocks(F.USERS, (n, k, d + 1), np.dtype(np.float32), users_blocks)
    writer.array(
        F.MOVIE_EMBEDDINGS, np.ascontiguousarray(arrays["movie_embeddings"].reshape(k, m, d))
    )
    writer.array(F.MOVIE_BIAS, np.ascontiguousarray(arrays["movie_bias"].reshape(k, m)))
    writer.array(F.USER_IDS, ids_as_text(data.user_ids, what="user"))
    writer.array(F.MOVIE_IDS, ids_as_text(data.movie_ids, what="movie"))
    indptr, indices = _csr(data)
    writer.array(F.WATCHED_INDPTR, indptr)
    writer.array(F.WATCHED_INDICES, indices)
    movies = {
        "titles": list(data.titles),
        "genres": [list(g) for g in data.genres],
        "first_genre": list(data.first_genre),
    }
    writer.raw(F.MOVIES, mf.dumps(movies).encode())
    for name, trace in traces.items():
        writer.array(f"{F.TRACES_DIR}/{name}.npy", trace)
    for name, content in files.items():
        writer.raw(f"{F.EXTRA_DIR}/{name}", bytes(content))
