"""A cache of the `WatchData` parsed from a tfds preparation, so later loads skip decoding.

One `.npz` file per dataset and version, under `<data root>/.cache/tfds/` (or
`<store>/.cache/tfds/` when the data root is read-only). It holds the key it was built from:
the dataset's name and version and the name, size and modification time of every file of
the preparation, so preparing the dataset again invalidates it. Files are written to a
temporary name, fsync'd and renamed under an exclusive `flock` on the folder (the store's own
primitives), so readers see the old file or the new one, never half of one, and two
processes that miss at the same time decode the dataset once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from storage.fsio import atomic_write, exclusive_lock
from training.data.watch import WatchData

__all__ = ["CACHE_FOLDER", "cache_key", "cache_path", "load_cached", "save_cached", "writable_slot"]

CACHE_FOLDER = Path(".cache") / "tfds"
_SCHEMA = 1  # bump when the file layout below changes
_WATCH_FIELDS = tuple(field.name for field in dataclasses.fields(WatchData))
_GENRE_SEPARATOR = "|"  # no MovieLens genre name contains it


def cache_key(name: str, version: str, files: Sequence[Path]) -> dict[str, Any]:
    """What a cached result depends on: the dataset, its version, and its files' sizes and
    modification times (ns). Also the cache layout and `WatchData`'s fields, so a new release
    of this code never reads an old layout."""
    stats = []
    for path in sorted(files):
        stat = path.stat()
        stats.append([path.name, stat.st_size, stat.st_mtime_ns])
    return {
        "schema": _SCHEMA,
        "fields": list(_WATCH_FIELDS),
        "dataset": name,
        "version": version,
        "files": stats,
    }


def cache_path(root: Path, name: str, version: str) -> Path:
    """`<root>/.cache/tfds/<name with / as __>-<version>.npz`."""
    return root / CACHE_FOLDER / f"{name.replace('/', '__')}-{version}.npz"


def _to_arrays(data: WatchData, key: dict[str, Any]) -> dict[str, np.ndarray]:
    arrays = {
        "key": np.array(json.dumps(key, sort_keys=True)),
        "source": np.array(data.source),
        "user_ids": data.user_ids,
        "movie_ids": data.movie_ids,
        "titles": np.array(data.titles, dtype=str),
        "genres": np.array([_GENRE_SEPARATOR.join(g) for g in data.genres], dtype=str),
        "user_index": data.user_index,
        "movie_index": data.movie_index,
    }
    if data.timestamps is not None:
        arrays["timestamps"] = data.timestamps
    return arrays


def _from_arrays(z: Any) -> WatchData:
    return WatchData(
        source=str(z["source"]),
        user_ids=z["user_ids"],
        movie_ids=z["movie_ids"],
        titles=tuple(z["titles"].tolist()),
        genres=tuple(tuple(g.split(_GENRE_SEPARATOR)) for g in z["genres"].tolist()),
        user_index=z["user_index"],
        movie_index=z["movie_index"],
        timestamps=z["timestamps"] if "timestamps" in z.files else None,
    )


def load_cached(path: Path, key: dict[str, Any]) -> WatchData | None:
    """The cached `WatchData` at `path` if it was built from `key`, else None.

    A damaged file is reported with a warning and treated as a miss (it is rewritten).
    """
    if not path.is_file():
        return None
    expected = json.dumps(key, sort_keys=True)
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != expected:
                return None
            return _from_arrays(z)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        warnings.warn(
            f"ignoring the damaged tfds cache {path} ({type(e).__name__}: {e}); "
            "reading the dataset again",
            RuntimeWarning,
            stacklevel=2,
        )
        return None


@contextlib.contextmanager
def writable_slot(roots: Sequence[Path]) -> Iterator[Path | None]:
    """Hold the cache lock in the first root whose cache folder is writable; yield that
    root (None, with a warning, when no root is writable)."""
    problems = []
    for root in roots:
        folder = root / CACHE_FOLDER
        with contextlib.ExitStack() as stack:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                stack.enter_context(exclusive_lock(folder / ".lock"))
            except OSError as e:
                problems.append(f"{folder}: {e.strerror or e}")
                continue
            yield root
            return
    warnings.warn(
        "cannot cache the parsed tfds data (" + "; ".join(problems or ["no folder given"]) + "); "
        "every load will decode the dataset again",
        RuntimeWarning,
        stacklevel=3,
    )
    yield None


def save_cached(path: Path, data: WatchData, key: dict[str, Any]) -> bool:
    """Write `data` to `path` atomically and durably; call it under `writable_slot`'s lock.

    Returns False, with a warning, when the write fails (a full disk only costs speed).
    """
    arrays = _to_arrays(data, key)
    try:
        atomic_write(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]
    except OSError as e:
        warnings.warn(f"cannot write the tfds cache {path}: {e}", RuntimeWarning, stacklevel=2)
        return False
    return True
