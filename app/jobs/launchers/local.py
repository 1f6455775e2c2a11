"""The `local` launcher: each job's training is a child process of the server, in its own
session (process group), so JAX, memory use or a crash never touch the server. The process
reports progress and its final status to the SQLite job store itself."""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.jobs.command import DEFAULT_PROGRAM, training_command
from app.jobs.launchers.base import Handle, LaunchError, Observation
from app.jobs.logs import log_path
from app.jobs.process import describe_exit, is_job_process, reap, signal_group
from storage.job_record import Job
from storage.job_store import JobStore

__all__ = ["LocalLauncher"]

log = logging.getLogger("shardlens.jobs")


@dataclass(kw_only=True)
class LocalHandle(Handle):
    """A job process started here, or reattached after a restart (`popen` None)."""

    pid: int
    popen: subprocess.Popen | None
    term_sent_at: float | None = None
    kill_sent: bool = False


class LocalLauncher:
    """Runs `program` + the job's flags as a child process; see the module docstring."""

    name = "local"

    def __init__(
        self,
        *,
        store: JobStore,
        store_dir: str | Path,
        data_root: str | Path | None = None,
        program: Sequence[str] = DEFAULT_PROGRAM,
        env: Mapping[str, str] | None = None,
        cancel_grace_s: float = 10.0,
    ):
        self.store = store
        self.store_dir = Path(store_dir)
        self.data_root = data_root
        self.program = tuple(program)
        self.env = dict(env) if env is not None else None
        self.cancel_grace_s = cancel_grace_s

    def launch(self, job: Job) -> LocalHandle:
        path = log_path(self.store_dir, job.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            argv = training_command(
                job.config,
                job_id=job.id,
                store_dir=self.store_dir,
                db_path=self.store.db_path,
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
            raise LaunchError(f"could not start the training process: {exc}") from exc
        self.store.set_pid(job.id, popen.pid)
        self.store.set_log_path(job.id, str(path))
        log.info("job %s started (pid %d, attempt %d)", job.id, popen.pid, job.attempts)
        return LocalHandle(job_id=job.id, pid=popen.pid, popen=popen)

    def observe(self, handle: Handle) -> Observation:
        assert isinstance(handle, LocalHandle)
        if handle.popen is not None:
            code = handle.popen.poll()
            ended = code is not None
        else:
            code = reap(handle.pid)  # our child after all (a runner restarted in-process)
            ended = code is not None or not is_job_process(handle.pid, handle.job_id)
        if not ended:
            return Observation(ended=False)
        return Observation(ended=True, error=describe_exit(code))

    def cancel(self, handle: Handle) -> None:
        """SIGTERM at the first call; SIGKILL once `cancel_grace_s` has passed."""
        assert isinstance(handle, LocalHandle)
        now = time.monotonic()
        if handle.term_sent_at is None:
            log.info("cancelling job %s: SIGTERM to pid %d", handle.job_id, handle.pid)
            self._signal(handle, signal.SIGTERM)
            handle.term_sent_at = now
        elif not handle.kill_sent and now - handle.term_sent_at >= self.cancel_grace_s:
            log.warning(
                "job %s ignored SIGTERM for %.0f s: SIGKILL", handle.job_id, self.cancel_grace_s
            )
            self._signal(handle, signal.SIGKILL)
            handle.kill_sent = True

    def reattach(self, job: Job) -> LocalHandle | None:
        """The job's process when it is alive and is this job's (not a reused pid)."""
        if job.pid is not None and is_job_process(job.pid, job.id):
            log.info("reattaching job %s (pid %d)", job.id, job.pid)
            return LocalHandle(job_id=job.id, pid=job.pid, popen=None)
        return None

    def _signal(self, handle: LocalHandle, sig: signal.Signals) -> None:
        # A reattached pid is signalled only while it still is this job's process.
        if handle.popen is not None or is_job_process(handle.pid, handle.job_id):
            signal_group(handle.pid, sig)
