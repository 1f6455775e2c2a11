"""Retention: which posterior versions and checkpoints `gc` may delete.

Never collected: the newest `SHARDLENS_KEEP_VERSIONS` versions, the version `latest` names,
the newest converged version (what `latest-converged` serves), versions pinned by a live
process (the server pins the version it serves), versions an operator holds
(`python -m storage pin`), and the checkpoints of jobs that can still resume (queued,
running, failed or cancelled: a failed or cancelled job can be requeued). `publish_posterior`
runs `gc` after every publish.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from storage import fsio, layout
from storage.convergence import read_convergence
from storage.errors import StoreError
from storage.job_record import JobError
from storage.job_store import JobStore, default_db_path
from storage.manifest import MANIFEST
from storage.store_settings import StoreSettings

__all__ = [
    "DEFAULT_KEEP",
    "FOREIGN_TEMP_TTL_S",
    "KEEP_ENV",
    "GcReport",
    "Pin",
    "default_keep",
    "gc",
    "hold",
    "holds",
    "live_pins",
    "newest_converged",
    "pin",
    "release_hold",
    "unpin",
]

KEEP_ENV = "SHARDLENS_KEEP_VERSIONS"
# An operator's hold: a pin file of this name is kept until `release_hold`, whoever wrote it.
HOLD_NAME = "held"
# Job statuses whose checkpoints gc removes: only a succeeded job can never resume.
_DONE_JOB = "succeeded"
DEFAULT_KEEP = 5
# Temp folders written from another host (container) are removed once this old.
FOREIGN_TEMP_TTL_S = 24 * 3600


def default_keep(settings: StoreSettings | None = None) -> int:
    """`$SHARDLENS_KEEP_VERSIONS` (or its line in `.env`), or 5; StoreError when it is not
    a whole number of at least 1."""
    value = ((settings or StoreSettings()).keep_versions or "").strip()
    if not value:
        return DEFAULT_KEEP
    try:
        keep = int(value)
    except ValueError:
        raise StoreError(f"{KEEP_ENV}={value!r} is not a whole number of versions") from None
    if keep < 1:
        raise StoreError(f"{KEEP_ENV} must be at least 1, got {keep}")
    return keep


class Pin:
    """A live process uses `version`: gc keeps it until `release()` (or the process dies)."""

    def __init__(self, store: Path, version: str, path: Path):
        self.store = store
        self.version = version
        self.path = path

    def release(self) -> None:
        """Remove the pin (idempotent)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> Pin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Pin({self.version!r}, {self.path.name!r})"


def pin(store_dir: str | Path, version: str = "latest") -> Pin:
    """Pin a version ("latest" resolves under the store lock, so gc cannot race it)."""
    store = Path(store_dir)
    store.mkdir(parents=True, exist_ok=True)
    with fsio.exclusive_lock(layout.lock_path(store)):
        resolved = layout.resolve(store, version)
        folder = layout.pins_dir(store) / resolved
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / layout.owner_tag()
        fsio.write_chunks(path, [f"{os.getpid()} {time.time():.3f}\n".encode()])
    return Pin(store, resolved, path)


def unpin(handle: Pin) -> None:
    """Release a pin."""
    handle.release()


def hold(store_dir: str | Path, version: str) -> str:
    """Keep `version` (an id or "latest") from gc until `release_hold`; returns the id.
    Raises `NoPosteriorError` for an unknown version."""
    store = Path(store_dir)
    with fsio.exclusive_lock(layout.lock_path(store)):
        resolved = layout.resolve(store, version)
        folder = layout.pins_dir(store) / resolved
        folder.mkdir(parents=True, exist_ok=True)
        fsio.write_chunks(folder / HOLD_NAME, [f"held at {time.time():.3f}\n".encode()])
    return resolved


def release_hold(store_dir: str | Path, version: str) -> bool:
    """Let gc collect `version` again (its process pins still count); False when not held."""
    path = layout.pins_dir(Path(store_dir)) / version / HOLD_NAME
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def holds(store_dir: str | Path) -> list[str]:
    """Versions an operator holds, oldest first."""
    root = layout.pins_dir(Path(store_dir))
    try:
        return sorted(f.name for f in root.iterdir() if (f / HOLD_NAME).is_file())
    except FileNotFoundError:
        return []


def newest_converged(store: Path, ids: list[str]) -> str | None:
    """The newest of `ids` whose manifest records a converged run (unreadable ones skipped).
    Manifests are read afresh, not through `version_convergence`'s cache, so gc never fills
    that cache with a manifest that is later found damaged."""
    for version in reversed(ids):
        path = layout.versions_dir(store) / version / MANIFEST
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict) and read_convergence(manifest).converged is True:
            return version
    return None


def _owner_alive(tag: str, *, foreign: bool) -> bool:
    """Whether the owner named by `tag` runs. Owners on another host (another container
    sharing the store) cannot be checked, so they count as `foreign`."""
    owner = layout.parse_owner(tag)
    if owner is None:
        return False
    pid, host = owner
    return fsio.pid_alive(pid) if host == layout.host_tag() else foreign


def live_pins(store_dir: str | Path, *, clean: bool = False) -> dict[str, int]:
    """{version: number of live pins}; with `clean`, delete pins of dead processes."""
    root = layout.pins_dir(Path(store_dir))
    counts: dict[str, int] = {}
    try:
        folders = list(root.iterdir())
    except FileNotFoundError:
        return counts
    for folder in folders:
        try:
            pins = list(folder.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            continue
        for path in pins:
            if path.name == HOLD_NAME or _owner_alive(path.name, foreign=True):
                counts[folder.name] = counts.get(folder.name, 0) + 1
            elif clean:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        if clean and folder.name not in counts:
            with contextlib.suppress(OSError):
                folder.rmdir()
    return counts


@dataclass(frozen=True)
class GcReport:
    """What one `gc` did: version ids removed and kept, temp folders and checkpoint folders
    (run keys) removed."""

    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    removed_temp: list[str] = field(default_factory=list)
    removed_checkpoints: list[str] = field(default_factory=list)


def _finished_job_checkpoints(store: Path) -> list[str]:
    """Checkpoint folders (named after their job id) of jobs that succeeded, so can never
    resume. Folders of runs without a job record (`python -m training train`) are kept:
    their owner may still `--resume` them."""
    root = layout.checkpoints_dir(store)
    db = default_db_path(store)
    if not root.is_dir() or not db.is_file():
        return []
    try:
        done = {job.id for job in JobStore(db).list_by_status(_DONE_JOB)}
    except (OSError, JobError, sqlite3.Error):
        return []  # cannot tell which jobs are done: keep everything
    return sorted(f.name for f in root.iterdir() if f.is_dir() and f.name in done)


def gc(store_dir: str | Path, *, keep: int | None = None) -> GcReport:
    """Delete all but the newest `keep` versions (default `default_keep()`), never `latest`,
    the newest converged version, pinned or held ones; the temp folders of dead publishers;
    and the checkpoints of jobs that succeeded. Deletion renames a version to a trash folder
    under the store lock (atomic for readers), then removes it outside the lock.
    Raises `StoreError` for a `keep` below 1."""
    keep = default_keep() if keep is None else keep
    if keep < 1:
        raise StoreError(f"keep must be at least 1, got {keep}")
    store = Path(store_dir)
    vdir = layout.versions_dir(store)
    if not vdir.is_dir():
        return GcReport()
    trash: list[Path] = []
    with fsio.exclusive_lock(layout.lock_path(store)):
        ids = layout.version_ids(store)
        protected = set(ids[-keep:]) | set(live_pins(store, clean=True))
        current = layout.current_version(store)
        if current is not None:
            protected.add(current)
        converged = newest_converged(store, ids)
        if converged is not None:
            protected.add(converged)
        removed = [v for v in ids if v not in protected]
        removed_temp = []
        for name in os.listdir(vdir):
            if not name.startswith(layout.TMP_PREFIX):
                continue
            try:
                age = time.time() - (vdir / name).stat().st_mtime
            except FileNotFoundError:  # its publisher just renamed it into place
                continue
            foreign_fresh = age < FOREIGN_TEMP_TTL_S
            if not _owner_alive(name[len(layout.TMP_PREFIX) :], foreign=foreign_fresh):
                removed_temp.append(name)
        for name in [*removed, *removed_temp]:
            target = vdir / f"{layout.TRASH_PREFIX}{name.lstrip('.')}-{os.urandom(4).hex()}"
            (vdir / name).rename(target)
        if removed or removed_temp:
            fsio.fsync_dir(vdir)
    for name in os.listdir(vdir):
        if name.startswith(layout.TRASH_PREFIX):
            trash.append(vdir / name)
    for path in trash:
        shutil.rmtree(path, ignore_errors=True)
    checkpoints = _finished_job_checkpoints(store)
    for key in checkpoints:
        shutil.rmtree(layout.checkpoints_dir(store) / key, ignore_errors=True)
    return GcReport(
        removed=removed,
        kept=[v for v in ids if v in protected],
        removed_temp=removed_temp,
        removed_checkpoints=checkpoints,
    )
