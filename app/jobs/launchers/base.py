"""The launcher interface: how the job runner starts, watches and stops one job's training.

The runner (`app.jobs.runner`) owns the job records and the queue; a launcher only knows its
way of running the training command: a child process of the server (`local`) or a batch job
of a cluster scheduler (`slurm`). Every launcher reports what it sees as an `Observation`;
the runner turns observations into job record updates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from storage.job_outcome import Outcome
from storage.job_record import Job

__all__ = ["Handle", "LaunchError", "Launcher", "Observation"]


class LaunchError(Exception):
    """The job could not be started; the message says why (e.g. the scheduler's refusal)."""


@dataclass(kw_only=True)
class Handle:
    """One launched job, as its launcher tracks it (launchers subclass it)."""

    job_id: str


@dataclass(frozen=True, kw_only=True)
class Observation:
    """What a launcher sees of one launched job at one poll.

    `ended`: nothing of the job runs any more, and nothing will. `error`: why it ended, for
    when the training process reported no result itself. `cancelled`: it ended because it
    was cancelled (on request, or by the scheduler's own users). `scheduler_state` (one of
    `app.jobs.launchers.slurm_state.KINDS`), `scheduler_reason` (the scheduler's words) and
    `started_at` (Unix seconds) are None for launchers without a scheduler. `outcome` and
    `progress` are what the training process reported through files, when it cannot reach
    the job database.
    """

    ended: bool
    error: str | None = None
    cancelled: bool = False
    scheduler_state: str | None = None
    scheduler_reason: str | None = None
    started_at: float | None = None
    outcome: Outcome | None = None
    progress: dict[str, Any] | None = None


class Launcher(Protocol):
    """Starts, watches and stops the training of jobs; the runner calls it from one thread."""

    name: str

    def launch(self, job: Job) -> Handle:
        """Start the training for `job` (status `running`, attempt `job.attempts`); raises
        `LaunchError` with the reason when it cannot."""
        ...

    def observe(self, handle: Handle) -> Observation:
        """What the job is doing now; never raises for a scheduler that cannot be reached
        (the observation then keeps the last state and says why in `scheduler_reason`)."""
        ...

    def cancel(self, handle: Handle) -> None:
        """Ask the job to stop; called at every poll while a cancel is pending, so a
        launcher may escalate (SIGTERM, then SIGKILL)."""
        ...

    def reattach(self, job: Job) -> Handle | None:
        """After a server restart: the handle of `job` when its training still runs (or the
        scheduler still knows it), else None."""
        ...
