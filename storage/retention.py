"""Retention: keep the newest N versions, `latest`, and versions pinned by live processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from storage import fsio, layout
from storage.errors import StoreError
from storage.store_settings import StoreSettings

__all__ = [
    "DEFAULT_KEEP",
    "FOREIGN_TEMP_TTL_S",
    "KEEP_ENV",
    "GcReport",
    "Pin",
    "default_keep",
    "gc",
    "live_pins",
    "pin",
    "unpin",
]

KEEP_ENV = "SHARDLENS_KEEP_VERSIONS"
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
            if _owner_alive(path.name, foreign=True):
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
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    removed_temp: list[str] = field(default_factory=list)


def gc(store_dir: str | Path, *, keep: int | None = None) -> GcReport:
    """Delete all but the newest `keep` versions (default `default_keep()`), never `latest`
    nor pinned ones, and the temp folders of dead publishers. Deletion renames a version to a
    trash folder under the store lock (atomic for readers), then removes it outside the lock."""
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
    return GcReport(
        removed=removed, kept=[v for v in ids if v in protected], removed_temp=removed_temp
    )
