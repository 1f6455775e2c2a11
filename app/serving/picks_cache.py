"""A disk cache of arrays derived from a version, shared by uvicorn workers and restarts.

Precomputing a full-size version's picks takes tens of seconds of CPU. With `--workers N`
each worker would repeat it; instead the first worker to get the lock computes and writes
`<kind>-<key>.npy` atomically, and the others (and later restarts) memory-map that file, so
its pages are shared too. The key hashes the version id and its files' sha256s, so an entry
can only ever describe the exact samples it was computed from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from storage.fsio import atomic_save_npy, exclusive_lock

KINDS = ("picks", "means", "movies", "genres")


def cache_key(manifest: dict[str, Any]) -> str:
    files = manifest.get("files", {})
    digest = hashlib.sha256(
        json.dumps(
            [manifest.get("version"), sorted((n, e.get("sha256")) for n, e in files.items())]
        ).encode()
    ).hexdigest()[:16]
    return f"{manifest.get('version')}-{digest}"


def cached_array(
    cache_dir: Path | None,
    kind: str,
    key: str,
    *,
    shape: tuple[int, ...],
    dtype: np.dtype,
    compute: Callable[[], np.ndarray],
) -> np.ndarray:
    """The `kind` array for `key`: memory-mapped from `cache_dir` if there, else computed
    (and stored). Without a cache directory it is just computed."""
    if cache_dir is None:
        return compute()
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{kind}-{key}.npy"
    with exclusive_lock(cache_dir / f"{kind}-{key}.lock"):
        if path.exists():
            try:
                array = np.load(path, mmap_mode="r", allow_pickle=False)
                if array.shape == shape and array.dtype == dtype:
                    return np.asarray(array)
            except (OSError, ValueError):
                pass  # unreadable: recompute and replace it
        array = compute()
        try:
            atomic_save_npy(path, array)
        except OSError:
            return array  # a read-only cache only costs speed
        del array  # serve the file's pages, shared with the other workers
        return np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))


def prune(cache_dir: Path, versions: set[str]) -> None:
    """Remove cache entries of versions not in `versions` (best effort)."""
    if not cache_dir.is_dir():
        return
    for kind in KINDS:
        for entry in cache_dir.glob(f"{kind}-*"):
            key = entry.name.removeprefix(f"{kind}-").rsplit(".", 1)[0]
            if key.rsplit("-", 1)[0] not in versions:
                entry.unlink(missing_ok=True)
