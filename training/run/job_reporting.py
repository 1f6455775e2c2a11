"""Job reporting for a training process started by the server's job runner.

`python -m training train --job-id ID --jobs-db PATH` uses a `JobReporter` as a progress sink:
every progress payload becomes a row update in the SQLite job store, and the final status
(succeeded with the version, or failed with the error) is written by the process itself. A
cancel (SIGTERM, or the job's cancel flag in the store) stops the run at the next segment
boundary, after its checkpoint is written, by raising `JobInterrupted`; the runner then
records `cancelled`.

On a cluster node the job database is out of reach (SQLite is not shared across hosts):
`--outcome-file PATH` uses an `OutcomeReporter` instead, which writes the final status to a
file in the store (progress goes to `--progress-jsonl`). SIGTERM (a cancel, a preemption,
a requeue or the time limit) stops the run the same way. Nothing here imports JAX.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from storage.job_outcome import Outcome, write_outcome
from storage.job_record import InvalidTransitionError
from storage.job_store import JobStore, default_db_path

__all__ = [
    "INTERRUPTED_EXIT_CODE",
    "BoundaryStop",
    "JobInterrupted",
    "JobReporter",
    "OutcomeReporter",
    "install_sigterm_handler",
    "reporter_for",
]

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


class BoundaryStop:
    """`train(on_boundary=...)`: called on every process at every segment boundary, after
    the checkpoint; raises `JobInterrupted` once SIGTERM asked the run to stop.

    In a run on `jax.distributed` (several processes, or a Slurm step), JAX's preemption
    service takes over SIGTERM: a notice reaching any process is passed to all, and
    `multihost_utils.reached_preemption_sync_point` names one boundary at which every
    process stops together, after the same checkpoint. Otherwise the `stop` event set by
    `install_sigterm_handler` stops the run at the next boundary.
    """

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self._step = 0  # the preemption service counts steps 0, 1, 2, ... on every process

    def __call__(self, iteration: int) -> None:
        from jax.experimental import multihost_utils

        step, self._step = self._step, self._step + 1
        if multihost_utils.reached_preemption_sync_point(step) or self.stop.is_set():
            raise JobInterrupted(
                f"asked to stop (SIGTERM: cancelled, preempted, requeued or out of time); "
                f"the checkpoint at iteration {iteration} is kept"
            )


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


class OutcomeReporter:
    """Progress sink (it only checks for a stop) and final-status writer to an outcome file
    (`storage.job_outcome`), for training processes that cannot reach the job database."""

    def __init__(self, *, path: str | Path, stop: threading.Event | None = None) -> None:
        self.path = Path(path)
        self.stop = stop or threading.Event()

    def check(self) -> None:
        """Raise `JobInterrupted` once SIGTERM arrived."""
        if self.stop.is_set():
            raise JobInterrupted(
                "asked to stop (SIGTERM: cancelled, preempted, requeued or out of time); "
                "the checkpoint is kept"
            )

    def __call__(self, payload: Mapping[str, Any]) -> None:
        self.check()

    def succeeded(self, version: str) -> None:
        write_outcome(self.path, Outcome(status="succeeded", version=version))

    def failed(self, error: str) -> None:
        """Record the failure unless another process of the run reported one first."""
        write_outcome(self.path, Outcome(status="failed", error=error), keep_existing=True)


def reporter_for(
    job_id: str | None,
    *,
    db_path: str | Path | None,
    store_dir: str | Path,
    outcome_file: str | Path | None = None,
) -> JobReporter | OutcomeReporter | None:
    """The reporter for `--job-id` (the database defaults to the store's `jobs.sqlite3`) or
    for `--outcome-file`, with the SIGTERM handler installed; None without either."""
    if job_id:
        return JobReporter(
            job_id=job_id,
            db_path=db_path or default_db_path(store_dir),
            stop=install_sigterm_handler(),
        )
    if outcome_file:
        return OutcomeReporter(path=outcome_file, stop=install_sigterm_handler())
    return None
