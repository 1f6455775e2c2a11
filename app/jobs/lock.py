"""An exclusive, non-blocking file lock: one job runner per store, across processes."""

from __future__ import annotations

import os
from pathlib import Path

from filelock import FileLock, Timeout

__all__ = ["RunnerLock"]


def _write_pid(fd: int) -> None:
    """Replace the lock file's content with this process's id (what operators and tests read
    to find the active runner). Runs only once the lock is held: a process that fails to take
    it never touches the holder's content."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


class RunnerLock:
    """An exclusive lock on the file `path` (`filelock`: `flock` on POSIX); the holder's pid is
    written in it. Released when closed or when the holding process dies; the file stays."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        # Not thread-local: the runner takes it in its loop thread and releases it in stop().
        self._lock = FileLock(self.path, thread_local=False, on_acquired=_write_pid)

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it, without waiting; True when this object holds it
        afterwards (also when it already did)."""
        if self._lock.is_locked:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(blocking=False)
        except Timeout:
            return False
        return True

    def release(self) -> None:
        """Drop the lock (a no-op when not held)."""
        if self._lock.is_locked:
            self._lock.release(force=True)
