"""The `slurm` launcher: each attempt of a job is a Slurm batch job (`sbatch`), its state
comes from `scontrol show job` (or `sacct` once the controller has forgotten it), a cancel is
`scancel`, and its log is the batch job's output file.

Cluster nodes cannot share the server's SQLite database, so the training reports through
files in the store: progress lines (`--progress-jsonl`) and its outcome (`--outcome-file`),
which the runner copies into the job record. Paths in the store must therefore be the same
on the server and on the nodes (a shared filesystem).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.jobs.command import DEFAULT_PROGRAM, LAUNCHER_KEYS, training_command
from app.jobs.launchers.base import Handle, LaunchError, Observation
from app.jobs.launchers.slurm_client import SlurmClient, SlurmCommandError
from app.jobs.launchers.slurm_config import (
    ResourceError,
    SlurmSettings,
    effective_resources,
    local_devices,
)
from app.jobs.launchers.slurm_script import render_script
from app.jobs.launchers.slurm_state import SlurmJob, describe_end, stepd_messages
from app.jobs.logs import log_path, tail_lines
from common.jobspec import RUN_FLAGS
from storage.job_outcome import Outcome, OutcomeError, read_outcome
from storage.job_record import Job
from storage.job_store import JobStore
from storage.layout import job_files_dir

__all__ = ["SlurmHandle", "SlurmLauncher", "job_files"]

log = logging.getLogger("shardlens.jobs")


def job_files(store_dir: Path, job_id: str) -> dict[str, Path]:
    """Where a Slurm job's files live in the store: its batch script, progress lines and
    outcome (the log is `app.jobs.logs.log_path`)."""
    folder = job_files_dir(store_dir, job_id)
    return {
        "script": folder / "job.sbatch",
        "progress": folder / "progress.jsonl",
        "outcome": folder / "outcome.json",
    }


@dataclass(kw_only=True)
class SlurmHandle(Handle):
    """One submitted attempt: the Slurm job id and what was last seen of it."""

    slurm_id: str
    checked_at: float = float("-inf")
    last: Observation | None = None
    cancel_sent: bool = False


class SlurmLauncher:
    """Submits, watches and cancels Slurm batch jobs; see the module docstring."""

    name = "slurm"

    def __init__(
        self,
        *,
        store: JobStore,
        store_dir: str | Path,
        settings: SlurmSettings,
        data_root: str | Path | None = None,
        program: Sequence[str] = DEFAULT_PROGRAM,
        env: Mapping[str, str] | None = None,
        client: SlurmClient | None = None,
    ):
        self.store = store
        self.store_dir = Path(store_dir).resolve()  # the nodes see the same absolute path
        self.settings = settings
        self.data_root = data_root
        self.program = tuple(program)
        self.client = client or SlurmClient(
            bin_dir=settings.bin_dir,
            conf=settings.conf,
            env=env,
            timeout_s=settings.command_timeout_s,
        )

    # -- submit ----------------------------------------------------------------------------

    def launch(self, job: Job) -> SlurmHandle:
        files = job_files(self.store_dir, job.id)
        log_file = log_path(self.store_dir, job.id)
        try:
            resources = effective_resources(self.settings, job.config.get("slurm"))
            per_task = local_devices(job.config.get("devices"), resources)
            extra = [RUN_FLAGS["distributed"], "auto"]
            extra += [RUN_FLAGS["outcome_file"], str(files["outcome"])]
            extra += [RUN_FLAGS["progress_jsonl"], str(files["progress"])]
            if per_task is not None:
                extra += [RUN_FLAGS["local_devices"], str(per_task)]
            argv = training_command(
                {k: v for k, v in job.config.items() if k not in LAUNCHER_KEYS},
                job_id=job.id,
                store_dir=self.store_dir,
                db_path=None,
                data_root=self.data_root,
                program=self.program,
                extra=extra,
            )
            script = render_script(
                job_id=job.id,
                attempt=job.attempts,
                argv=argv,
                log=log_file,
                resources=resources,
                admin_lines=self.settings.sbatch_lines,
            )
            files["script"].parent.mkdir(parents=True, exist_ok=True)
            for stale in (files["progress"], files["outcome"]):  # a previous attempt's
                stale.unlink(missing_ok=True)
            files["script"].write_text(script)
            with log_file.open("ab") as out:
                out.write(f"=== attempt {job.attempts}: sbatch {files['script']}\n".encode())
        except (OSError, ValueError, ResourceError) as exc:
            raise LaunchError(f"could not prepare the Slurm job: {exc}") from exc
        try:
            slurm_id = self.client.submit(files["script"])
        except SlurmCommandError as exc:
            raise LaunchError(f"Slurm refused the job: {exc}") from exc
        self.store.set_external_id(job.id, slurm_id)
        self.store.set_log_path(job.id, str(log_file))
        log.info("job %s submitted as Slurm job %s (attempt %d)", job.id, slurm_id, job.attempts)
        return SlurmHandle(job_id=job.id, slurm_id=slurm_id)

    # -- watch -----------------------------------------------------------------------------

    def observe(self, handle: Handle) -> Observation:
        assert isinstance(handle, SlurmHandle)
        files = job_files(self.store_dir, handle.job_id)
        outcome = self._outcome(files["outcome"])
        progress = _last_progress(files["progress"])
        now = time.monotonic()
        if handle.last is not None and now - handle.checked_at < self.settings.poll_interval_s:
            return _with(handle.last, outcome=outcome, progress=progress)
        handle.checked_at = now
        try:
            job = self.client.show_job(handle.slurm_id) or self.client.accounting(handle.slurm_id)
        except SlurmCommandError as exc:
            log.warning(
                "job %s: cannot query Slurm job %s: %s", handle.job_id, handle.slurm_id, exc
            )
            state = handle.last.scheduler_state if handle.last else None
            seen = Observation(
                ended=False,
                scheduler_state=state or "pending",
                scheduler_reason=f"cannot query Slurm: {exc}",
            )
        else:
            seen = self._seen(handle, job)
        handle.last = seen
        return _with(seen, outcome=outcome, progress=progress)

    def _seen(self, handle: SlurmHandle, job: SlurmJob | None) -> Observation:
        if job is None:
            return Observation(
                ended=True,
                error=f"Slurm no longer knows job {handle.slurm_id} (the controller forgets "
                "finished jobs MinJobAge seconds after they end, and no accounting database "
                "lists it) and the training reported no result",
            )
        # Slurm's reason; else its state when the job state does not already say it
        # (REQUEUED, COMPLETING, SUSPENDED, BOOT_FAIL, ...).
        reason = job.reason or (job.state if job.state.upper() != job.kind.upper() else None)
        if not job.ended:
            return Observation(
                ended=False,
                scheduler_state=job.kind,
                scheduler_reason=reason,
                started_at=job.start_time,
            )
        lines = tail_lines(log_path(self.store_dir, handle.job_id), 50)
        return Observation(
            ended=True,
            error=describe_end(job, notices=stepd_messages(lines)),
            cancelled=job.kind == "cancelled",
            scheduler_state=job.kind,
            scheduler_reason=reason,
            started_at=job.start_time,
        )

    def _outcome(self, path: Path) -> Outcome | None:
        try:
            return read_outcome(path)
        except (OSError, OutcomeError) as exc:
            log.warning("ignoring an unreadable outcome file: %s", exc)
            return None

    # -- cancel and recover ----------------------------------------------------------------

    def cancel(self, handle: Handle) -> None:
        """`scancel` once (retried at the next poll when Slurm cannot be reached)."""
        assert isinstance(handle, SlurmHandle)
        if handle.cancel_sent:
            return
        try:
            self.client.cancel(handle.slurm_id)
        except SlurmCommandError as exc:
            log.warning("job %s: scancel %s failed: %s", handle.job_id, handle.slurm_id, exc)
            return
        handle.cancel_sent = True
        handle.checked_at = float("-inf")  # look at its state at the next poll
        log.info("cancelling job %s: scancel %s", handle.job_id, handle.slurm_id)

    def reattach(self, job: Job) -> SlurmHandle | None:
        """Every submitted job is found again by its Slurm job id; `observe` then says
        whether Slurm still runs it, has ended it, or has forgotten it."""
        if job.external_id is None:
            return None
        log.info("reattaching job %s (Slurm job %s)", job.id, job.external_id)
        return SlurmHandle(job_id=job.id, slurm_id=job.external_id)


def _with(seen: Observation, **files: Any) -> Observation:
    return dataclasses.replace(seen, **files)


def _last_progress(path: Path) -> dict[str, Any] | None:
    """The newest complete progress line (a line being written is skipped)."""
    for line in reversed(tail_lines(path, 2)):
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                return value
    return None
