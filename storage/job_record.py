"""One job record as the job store returns it, its statuses, and the errors of job
operations (plain data; `storage.job_store.JobStore` reads and writes them)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from common.jobspec import PROGRESS_FIELDS

__all__ = [
    "FINISHED",
    "PENDING",
    "STATUSES",
    "InvalidTransitionError",
    "Job",
    "JobError",
    "JobNotFoundError",
    "JobPage",
    "row_to_job",
]

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = ("succeeded", "failed", "cancelled")
# A running job that its scheduler has not started yet (or requeued) shows as queued.
PENDING = "pending"


class JobError(Exception):
    """A job operation failed."""


class JobNotFoundError(JobError, KeyError):
    """No job has this id."""

    def __str__(self) -> str:
        return str(self.args[0])


class InvalidTransitionError(JobError):
    """The job's status does not allow this change."""


@dataclass(frozen=True, kw_only=True)
class Job:
    """One job record. Times are Unix seconds (UTC)."""

    id: str
    kind: str
    status: str
    config: dict[str, Any]
    created_at: float
    started_at: float | None
    finished_at: float | None
    phase: str | None
    iteration: int | None
    total: int | None
    leapfrog_per_s: float | None
    acceptance: float | None
    step_size: float | None
    eta_s: float | None
    updated_at: float | None
    error: str | None
    version: str | None
    log_path: str | None
    pid: int | None
    cancel_requested: bool
    attempts: int
    sizes: dict[str, Any] | None = None
    backend: str = "local"
    external_id: str | None = None
    scheduler_state: str | None = None
    scheduler_reason: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def effective_status(self) -> str:
        """The status users see: a job handed to a scheduler that has not started it yet
        (pending, or requeued) counts as `queued`; otherwise `status`."""
        if self.status == "running" and self.scheduler_state == PENDING:
            return "queued"
        return self.status

    @property
    def progress(self) -> dict[str, Any]:
        """The progress fields, plus `updated_at`."""
        return {name: getattr(self, name) for name in (*PROGRESS_FIELDS, "updated_at")}

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    total: int
    limit: int
    offset: int


def row_to_job(row: sqlite3.Row) -> Job:
    values = {key: row[key] for key in row.keys() if key != "seq"}  # noqa: SIM118
    values["config"] = json.loads(values["config"])
    values["sizes"] = json.loads(values["sizes"]) if values.get("sizes") else None
    values["cancel_requested"] = bool(values["cancel_requested"])
    return Job(**values)
