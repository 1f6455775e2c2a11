"""Job reporting for a training process started by the server's job runner.

`python -m training train --job-id ID --jobs-db PATH` uses a `JobReporter` as a progress sink:
every progress payload becomes a row update in the SQLite job store, and the final status
(succeeded with the version, or failed with the error) is written by the process itself. A
cancel (SIGTERM, or the job's cancel flag in the store) stops the run at the next segment
boundary, after its checkpoint is written, by raising `JobInterrupted`; the runner then
records `cancelled`. Nothing here imports JAX.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from storage.jobs import InvalidTransitionError, JobStore, default_db_path

INTERRUPTED_EXIT_CODE = 128 + signal.SIGTERM


class JobInterrupted(Exception):
    """The job was asked to stop (SIGTERM or a cancel request); nothing is published."""


def install_sigterm_handler() -> threading.Event:
    """On the first SIGTERM set the returned event (the run stops at the next segment
    boundary); a second SIGTERM raises `JobInterrupted` at once. Main thread only."""
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise JobInterrupted("terminated (second SIGTERM)")
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    return stop


class JobReporter:
    """Progress sink and final-status writer for one job record."""

    def __init__(
        self, *, job_id: str, db_path: str | Path, stop: threading.Event | None = None
    ) -> None:
        self.job_id = job_id
        self.store = JobStore(db_path)
        self.stop = stop or threading.Event()
        self.store.get(job_id)  # fail early on a wrong id or database

    def check(self) -> None:
        """Raise `JobInterrupted` when a stop was requested by signal or in the store."""
        if self.stop.is_set():
            raise JobInterrupted(f"job {self.job_id} was asked to stop (SIGTERM)")
        job = self.store.get(self.job_id)
        if job.cancel_requested:
            raise JobInterrupted(f"job {self.job_id} was cancelled")
        if job.status != "running":
            raise JobInterrupted(
                f"job {self.job_id} is {job.status} in {self.store.db_path}, not running; "
                "stopping so that nothing is published for it"
            )

    def __call__(self, payload: Mapping[str, Any]) -> None:
        """Record one progress payload, then stop if asked to."""
        self.store.update_progress(self.job_id, payload)
        self.check()

    def succeeded(self, version: str) -> None:
        self.store.finish(self.job_id, "succeeded", version=version)

    def failed(self, error: str) -> None:
        """Record the failure (ignored when the job is no longer running)."""
        with contextlib.suppress(InvalidTransitionError):
            self.store.finish(self.job_id, "failed", error=error)


def reporter_for(
    job_id: str | None, *, db_path: str | Path | None, store_dir: str | Path
) -> JobReporter | None:
    """The reporter for `--job-id` (None without one), with the SIGTERM handler installed.
    The database defaults to the store's `jobs.sqlite3`."""
    if not job_id:
        return None
    return JobReporter(
        job_id=job_id,
        db_path=db_path or default_db_path(store_dir),
        stop=install_sigterm_handler(),
    )
