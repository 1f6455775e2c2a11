"""Publishing a version: write a temp folder, fsync, rename into place, move `latest`."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from common.jsonable import jsonable
from storage import files as F
from storage import fsio, layout
from storage import manifest as mf
from storage.convergence import CONVERGENCE_KEY, check_record
from storage.errors import StoreError
from storage.id_arrays import id_kind, ids_as_text
from storage.retention import gc


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


__all__ = ["FittedData", "Shapes", "check_samples", "publish_posterior"]

log = logging.getLogger("shardlens.storage")

_BLOCK_BYTES = 16 << 20  # rows per block so each staged block is about 16 MiB


class Shapes(NamedTuple):
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


class _Writer:
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


def _check_extras(traces: Mapping[str, Any], files: Mapping[str, bytes]) -> dict[str, np.ndarray]:
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


def publish_posterior(
    store_dir: str | Path,
    *,
    samples: Mapping[str, np.ndarray],
    data: FittedData,
    config: Mapping[str, Any],
    traces: Mapping[str, np.ndarray] = {},
    diagnostics: Mapping[str, Any] = {},
    files: Mapping[str, bytes] = {},
    convergence: Mapping[str, Any] | None = None,
) -> str:
    """Publish a posterior as a new version and point `latest` at it; returns its id.

    `convergence` is the run's convergence verdict, recorded as the manifest's
    `convergence` entry: a mapping with a bool `converged` (and the thresholds and figures
    it was checked against). Without it the version has no record and is served as
    "convergence not recorded" (see `storage.convergence`).

    Readers never see a partial version: everything is written and fsync'd in a temp folder
    that is renamed into place under the store lock, and only then does `latest` move.
    Old versions are then collected (`storage.retention.gc`, `SHARDLENS_KEEP_VERSIONS`).
    """
    store = Path(store_dir)
    arrays, shapes = check_samples(samples, data)
    try:
        ids_as_text(data.user_ids, what="user")
        ids_as_text(data.movie_ids, what="movie")
    except ValueError as exc:
        raise StoreError(str(exc)) from None
    trace_arrays = _check_extras(traces, files)
    try:
        config_json = jsonable(config)
        diagnostics_json = jsonable(diagnostics)
        convergence_json = None if convergence is None else jsonable(convergence)
    except TypeError as exc:
        raise StoreError(f"config, diagnostics and convergence must be JSON-like: {exc}") from exc
    why = None if convergence_json is None else check_record(convergence_json)
    if why:
        raise StoreError(f"convergence record refused: {why}")
    vdir = layout.versions_dir(store)
    vdir.mkdir(parents=True, exist_ok=True)
    layout.pins_dir(store).mkdir(exist_ok=True)
    tmp = vdir / layout.tmp_name()
    tmp.mkdir()
    try:
        writer = _Writer(tmp)
        _write_payload(writer, arrays, shapes, data, trace_arrays, files)
        extra = {} if convergence_json is None else {CONVERGENCE_KEY: convergence_json}
        version = _commit(store, tmp, writer, shapes, data, config_json, diagnostics_json, extra)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _collect_after_publish(store)
    return version


def _collect_after_publish(store: Path) -> None:
    """`gc` with `SHARDLENS_KEEP_VERSIONS` (see storage.retention for what it never
    deletes). The version is already published: a failing gc only warns."""
    try:
        report = gc(store)
    except (StoreError, OSError) as exc:
        log.warning("gc after publishing in %s failed: %s", store, exc)
        return
    if report.removed or report.removed_checkpoints:
        log.info(
            "gc after publishing: removed versions %s, checkpoints %s",
            report.removed,
            report.removed_checkpoints,
        )


def _write_payload(
    writer: _Writer,
    arrays: dict[str, np.ndarray],
    shapes: Shapes,
    data: FittedData,
    traces: Mapping[str, np.ndarray],
    files: Mapping[str, bytes],
) -> None:
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


def _commit(
    store: Path,
    tmp: Path,
    writer: _Writer,
    shapes: Shapes,
    data: FittedData,
    config: Any,
    diagnostics: Any,
    extra: Mapping[str, Any],
) -> str:
    """Under the store lock: name the version, write its manifest, rename it, move `latest`."""
    vdir = layout.versions_dir(store)
    with fsio.exclusive_lock(layout.lock_path(store)):
        known = [*layout.version_ids(store), layout.read_latest(store) or ""]
        newest = max(known) or None
        version = layout.new_version_id(after=newest)
        manifest = {
            "format": mf.FORMAT,
            "format_version": mf.FORMAT_VERSION,
            "version": version,
            "created_at": layout.version_time(version).isoformat().replace("+00:00", "Z"),
            "config": config,
            "data": {
                "source": data.source,
                "fingerprint": data.fingerprint(),
                "num_watches": data.num_watches,
                "loading": jsonable(getattr(data, "report", {}) or {}),
            },
            "ids": {"users": id_kind(data.user_ids), "movies": id_kind(data.movie_ids)},
            "shapes": {**shapes._asdict(), "samples": shapes.samples},
            "layout": {
                "sample_index": "k = draw * chains + chain",
                "users": "users.npy [users, samples, latent_dim + 1]: embedding, then bias",
            },
            "files": writer.entries,
            "diagnostics": diagnostics,
            **extra,
            "code": mf.code_version(),
        }
        fsio.write_chunks(tmp / mf.MANIFEST, [mf.dumps(manifest).encode()])
        writer.sync_dirs()
        tmp.rename(vdir / version)
        fsio.fsync_dir(vdir)
        fsio.atomic_write_text(layout.latest_path(store), version + "\n")
    return version
