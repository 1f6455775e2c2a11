"""`JobRunner`: owned by the server process, it starts queued training jobs through a
launcher (a local child process, or a Slurm batch job; FIFO, `max_concurrent` at a time) and
watches them until they end.

The SQLite job store is the only channel between the HTTP handlers, the runner and local
training processes: handlers create, cancel and requeue records; the runner claims queued
records, launches each one with the launcher its record names (`backend`), records what the
launcher observes (a scheduler's state and reason, progress and outcome files) and finalizes
records whose training ended without reporting. Every uvicorn worker may create a runner, but
only the one holding `<store>/jobs/runner.lock` runs jobs; the others keep trying, so one of
them takes over when the holder dies.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.jobs.command import DEFAULT_PROGRAM
from app.jobs.launchers.base import Handle, Launcher, LaunchError, Observation
from app.jobs.launchers.local import LocalLauncher
from app.jobs.lock import RunnerLock
from app.jobs.process import describe_exit
from storage.job_record import InvalidTransitionError, Job
from storage.job_store import JobStore, default_db_path
from storage.layout import runner_lock_path

__all__ = ["CANCELLED", "GONE_AFTER_RESTART", "KIND", "NEVER_STARTED", "JobRunner"]

log = logging.getLogger("shardlens.jobs")

KIND = "train"
GONE_AFTER_RESTART = "the server restarted and the training process was gone"
NEVER_STARTED = "the server stopped while starting the training process"
CANCELLED = "cancelled on request"


@dataclass(kw_only=True)
class _Watched:
    """One launched job this runner watches, and what was last recorded of it."""

    launcher: Launcher
    handle: Handle
    scheduler: tuple[str | None, str | None, float | None] | None = None
    progress: dict[str, Any] | None = None


class JobRunner:
    """Runs queued jobs in a background thread; see the module docstring.

    `launchers` maps a job's `backend` to the launcher that runs it (default: only `local`,
    a child process running `program`, built from the arguments below it)."""

    def __init__(
        self,
        *,
        store_dir: str | Path,
        db_path: str | Path | None = None,
        data_root: str | Path | None = None,
        max_concurrent: int = 1,
        cancel_grace_s: float = 10.0,
        poll_interval_s: float = 0.5,
        program: Sequence[str] = DEFAULT_PROGRAM,
        env: Mapping[str, str] | None = None,
        on_success: Callable[[str], object] | None = None,
        launchers: Mapping[str, Launcher] | None = None,
    ):
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.store_dir = Path(store_dir)
        self.db_path = Path(db_path) if db_path else default_db_path(self.store_dir)
        self.max_concurrent = max_concurrent
        self.poll_interval_s = poll_interval_s
        self.on_success = on_success
        self.store = JobStore(self.db_path)
        self.launchers: dict[str, Launcher] = dict(launchers or {})
        self.launchers.setdefault(
            "local",
            LocalLauncher(
                store=self.store,
                store_dir=self.store_dir,
                data_root=data_root,
                program=program,
                env=env,
                cancel_grace_s=cancel_grace_s,
            ),
        )
        self.lock = RunnerLock(runner_lock_path(self.store_dir))
        self._watched: dict[str, _Watched] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """True when this runner holds the lock and runs jobs."""
        return self.lock.held

    def start(self) -> bool:
        """Take the lock if free, recover jobs left running, and start the loop thread.
        Returns whether this runner is the active one (it keeps trying otherwise)."""
        if self._thread is not None:
            return self.active
        self._stop.clear()
        self._try_activate()
        self._thread = threading.Thread(target=self._loop, name="job-runner", daemon=True)
        self._thread.start()
        return self.active

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """Stop the loop and release the lock. Jobs keep running (local processes are in
        their own sessions; scheduler jobs are the scheduler's), and the next runner
        reattaches them."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None
        self._watched.clear()
        self.lock.release()

    def wake(self) -> None:
        """Look at the queue now instead of at the next poll."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self._try_activate():
                    self.tick()
            except Exception:  # never let the runner die silently
                log.exception("job runner pass failed")
            self._wake.wait(self.poll_interval_s)
            self._wake.clear()

    def _try_activate(self) -> bool:
        if self.lock.held:
            return True
        if not self.lock.try_acquire():
            return False
        log.info("job runner active for %s", self.store_dir)
        self.recover()
        return True

    # -- one pass --------------------------------------------------------------------------

    def recover(self) -> None:
        """Reattach jobs left `running` whose training still runs; fail the others."""
        for job in self.store.list_by_status("running"):
            if job.id in self._watched:
                continue
            launcher = self.launchers.get(job.backend)
            handle = launcher.reattach(job) if launcher is not None else None
            if launcher is not None and handle is not None:
                self._watched[job.id] = _Watched(launcher=launcher, handle=handle)
                continue
            started = job.pid is not None or job.external_id is not None
            reason = GONE_AFTER_RESTART if started else NEVER_STARTED
            if launcher is None:
                reason = self._no_launcher(job)
            self._conclude(job.id, Observation(ended=True, error=reason))

    def tick(self) -> None:
        """Record what each launched job is doing, finalize ended ones, deliver cancels,
        then launch queued jobs."""
        for watched in list(self._watched.values()):
            try:
                self._check(watched)
            except Exception:  # one job's trouble must not stall the others
                log.exception("checking job %s failed", watched.handle.job_id)
        while len(self._watched) < self.max_concurrent and not self._stop.is_set():
            job = self.store.claim_next_queued(kind=KIND)
            if job is None:
                break
            self._launch(job)

    def _check(self, watched: _Watched) -> None:
        job_id = watched.handle.job_id
        observation = watched.launcher.observe(watched.handle)
        job = self._record(watched, observation)
        if observation.ended:
            del self._watched[job_id]
            self._conclude(job_id, observation)
        elif job.cancel_requested:
            watched.launcher.cancel(watched.handle)

    def _record(self, watched: _Watched, seen: Observation) -> Job:
        """Write what the launcher saw (progress, a reported outcome, the scheduler's state)
        to the job record, each only when it changed."""
        job_id = watched.handle.job_id
        if seen.progress is not None and seen.progress != watched.progress:
            watched.progress = seen.progress
            self.store.update_progress(job_id, seen.progress)
        job = self.store.get(job_id)
        if seen.outcome is not None and not job.finished:
            job = self._finish(
                job_id,
                seen.outcome.status,
                error=seen.outcome.error,
                version=seen.outcome.version,
            )
        if seen.scheduler_state is not None:
            state = (seen.scheduler_state, seen.scheduler_reason, seen.started_at)
            if state != watched.scheduler:
                watched.scheduler = state
                job = self.store.set_scheduler_state(
                    job_id,
                    state=seen.scheduler_state,
                    reason=seen.scheduler_reason,
                    started_at=seen.started_at,
                )
        return job

    def _launch(self, job: Job) -> None:
        launcher = self.launchers.get(job.backend)
        if launcher is None:
            self._finish(job.id, "failed", error=self._no_launcher(job))
            return
        try:
            handle = launcher.launch(job)
        except LaunchError as exc:
            log.warning("job %s could not be launched: %s", job.id, exc)
            self._finish(job.id, "failed", error=str(exc))
            return
        self._watched[job.id] = _Watched(launcher=launcher, handle=handle)

    def _no_launcher(self, job: Job) -> str:
        return (
            f"job {job.id} is for the {job.backend!r} job backend, which this server does not "
            f"run (it runs {sorted(self.launchers)}); set SHARDLENS_JOB_BACKEND"
        )

    def _conclude(self, job_id: str, seen: Observation) -> None:
        """The job's training is over: keep the status it reported, or decide one."""
        job = self.store.get(job_id)
        if not job.finished:
            if job.cancel_requested:
                job = self._finish(job_id, "cancelled", error=CANCELLED)
            elif seen.cancelled:
                job = self._finish(job_id, "cancelled", error=seen.error or CANCELLED)
            else:
                job = self._finish(job_id, "failed", error=seen.error or describe_exit(None))
        log.info("job %s %s%s", job_id, job.status, f": {job.error}" if job.error else "")
        if job.status == "succeeded" and job.version and self.on_success is not None:
            # Loading a version can take a while; the queue does not wait for it.
            threading.Thread(
                target=self._reload, args=(job_id, job.version), name="job-reload", daemon=True
            ).start()

    def _reload(self, job_id: str, version: str) -> None:
        assert self.on_success is not None
        try:
            self.on_success(version)
        except Exception:
            log.exception("reload after job %s (version %s) failed", job_id, version)

    def _finish(
        self, job_id: str, status: str, *, error: str | None, version: str | None = None
    ) -> Job:
        with contextlib.suppress(InvalidTransitionError):  # it reported its result meanwhile
            return self.store.finish(job_id, status, error=error, version=version)
        return self.store.get(job_id)
