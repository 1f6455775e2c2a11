"""`JobRunner`: owned by the server process, it runs queued training jobs as separate OS
processes (FIFO, `max_concurrent` at a time) and watches them until they end.

The SQLite job store is the only channel between the HTTP handlers, the runner and the
training processes: handlers create, cancel and requeue records; the runner claims queued
records, starts one process per job and finalizes records whose process ended without
reporting; the training process writes its progress and its own final status. Every uvicorn
worker may create a runner, but only the one holding `<store>/jobs/runner.lock` runs jobs;
the others keep trying, so one of them takes over when the holder dies.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.jobs.command import DEFAULT_PROGRAM, training_command
from app.jobs.lock import RunnerLock
from app.jobs.logs import log_path
from app.jobs.process import describe_exit, is_job_process, reap, signal_group
from storage.jobs import InvalidTransitionError, Job, JobStore, default_db_path

log = logging.getLogger("shardlens.jobs")

KIND = "train"
GONE_AFTER_RESTART = "the server restarted and the training process was gone"
NEVER_STARTED = "the server stopped while starting the training process"
CANCELLED = "cancelled on request"


@dataclass(kw_only=True)
class _Watched:
    """One job process this runner watches (started here, or reattached after a restart)."""

    job_id: str
    pid: int
    popen: subprocess.Popen | None  # None when reattached: not our child
    term_sent_at: float | None = None
    kill_sent: bool = False

    def exit_status(self) -> tuple[bool, int | None]:
        """(ended, returncode or None when unknown)."""
        if self.popen is not None:
            code = self.popen.poll()
            return code is not None, code
        code = reap(self.pid)  # our child after all (a runner restarted in-process)
        if code is not None:
            return True, code
        return not is_job_process(self.pid, self.job_id), None


class JobRunner:
    """Runs queued jobs in a background thread; see the module docstring."""

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
    ):
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.store_dir = Path(store_dir)
        self.db_path = Path(db_path) if db_path else default_db_path(self.store_dir)
        self.data_root = data_root
        self.max_concurrent = max_concurrent
        self.cancel_grace_s = cancel_grace_s
        self.poll_interval_s = poll_interval_s
        self.program = tuple(program)
        self.env = dict(env) if env is not None else None
        self.on_success = on_success
        self.store = JobStore(self.db_path)
        self.lock = RunnerLock(self.store_dir / "jobs" / "runner.lock")
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
        """Stop the loop and release the lock. Job processes keep running: they are in
        their own sessions, and the next runner reattaches them."""
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
        """Reattach jobs left `running` whose process is alive; fail the others."""
        for job in self.store.list_by_status("running"):
            if job.id in self._watched:
                continue
            if job.pid is not None and is_job_process(job.pid, job.id):
                log.info("reattaching job %s (pid %d)", job.id, job.pid)
                self._watched[job.id] = _Watched(job_id=job.id, pid=job.pid, popen=None)
                continue
            reason = GONE_AFTER_RESTART if job.pid is not None else NEVER_STARTED
            self._conclude(job.id, None, reason=reason)

    def tick(self) -> None:
        """Finalize ended processes, deliver cancels, then start queued jobs."""
        for watched in list(self._watched.values()):
            ended, code = watched.exit_status()
            if ended:
                del self._watched[watched.job_id]
                self._conclude(watched.job_id, code)
            else:
                self._enforce_cancel(watched)
        while len(self._watched) < self.max_concurrent and not self._stop.is_set():
            job = self.store.claim_next_queued(kind=KIND)
            if job is None:
                break
            self._spawn(job)

    def _spawn(self, job: Job) -> None:
        path = log_path(self.store_dir, job.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            argv = training_command(
                job.config,
                job_id=job.id,
                store_dir=self.store_dir,
                db_path=self.db_path,
                data_root=self.data_root,
                resume=job.attempts > 1,
                program=self.program,
            )
            with path.open("ab") as out:
                out.write(f"=== attempt {job.attempts}: {' '.join(argv)}\n".encode())
                out.flush()
                popen = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=self.env,
                )
        except (OSError, ValueError) as exc:
            self._finish(job.id, "failed", error=f"could not start the training process: {exc}")
            return
        self._watched[job.id] = _Watched(job_id=job.id, pid=popen.pid, popen=popen)
        self.store.set_pid(job.id, popen.pid)
        self.store.set_log_path(job.id, str(path))
        log.info("job %s started (pid %d, attempt %d)", job.id, popen.pid, job.attempts)

    def _enforce_cancel(self, watched: _Watched) -> None:
        now = time.monotonic()
        if watched.term_sent_at is None:
            if self.store.get(watched.job_id).cancel_requested:
                log.info("cancelling job %s: SIGTERM to pid %d", watched.job_id, watched.pid)
                self._signal(watched, signal.SIGTERM)
                watched.term_sent_at = now
        elif not watched.kill_sent and now - watched.term_sent_at >= self.cancel_grace_s:
            log.warning(
                "job %s ignored SIGTERM for %.0f s: SIGKILL", watched.job_id, self.cancel_grace_s
            )
            self._signal(watched, signal.SIGKILL)
            watched.kill_sent = True

    def _signal(self, watched: _Watched, sig: signal.Signals) -> None:
        # A reattached pid is signalled only while it still is this job's process.
        if watched.popen is not None or is_job_process(watched.pid, watched.job_id):
            signal_group(watched.pid, sig)

    def _conclude(self, job_id: str, returncode: int | None, *, reason: str | None = None) -> None:
        """The job's process is gone: keep the status it reported, or decide one."""
        job = self.store.get(job_id)
        if not job.finished:
            if job.cancel_requested:
                job = self._finish(job_id, "cancelled", error=CANCELLED)
            else:
                job = self._finish(job_id, "failed", error=reason or describe_exit(returncode))
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

    def _finish(self, job_id: str, status: str, *, error: str) -> Job:
        try:
            return self.store.finish(job_id, status, error=error)
        except InvalidTransitionError:  # the process reported its result meanwhile
            return self.store.get(job_id)
