"""Response bodies of the job endpoints (pydantic v2), with OpenAPI examples."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from storage.job_record import Job

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]


def _time(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


class JobProgress(BaseModel):
    phase: str | None = Field(
        description="what the training process is doing: compile, burnin, sampling or saving"
    )
    iteration: int | None = Field(description="HMC iterations done (burn-in + results)")
    total: int | None = Field(description="HMC iterations in all")
    fraction: float | None = Field(description="iteration / total")
    leapfrog_per_s: float | None = Field(description="leapfrog steps per second, last segment")
    acceptance: float | None = Field(description="mean acceptance probability, last segment")
    step_size: float | None = Field(description="current HMC step size")
    eta_s: float | None = Field(description="estimated seconds left")
    updated_at: datetime | None = Field(description="when the training process last reported")


class SchedulerInfo(BaseModel):
    """What the cluster scheduler says about a job (Slurm backend)."""

    job_id: str | None = Field(description="the scheduler's job id (Slurm: `squeue -j ID`)")
    state: str | None = Field(
        description="pending, running, completed, failed, cancelled, timeout, node_fail or "
        "out_of_memory (Slurm's states mapped; see docs/CLUSTER.md)"
    )
    reason: str | None = Field(
        description="the scheduler's reason, e.g. why it is pending: Resources, Priority, "
        "JobHeldUser; or a problem reaching it"
    )


_JOB_EXAMPLE: dict[str, Any] = {
    "id": "6f1c0e9a2b7d4c11a0e3f5d7c9b1a2e4",
    "status": "running",
    "config": {"preset": "smoke", "data": "synthetic"},
    "created_at": "2026-11-27T08:00:00Z",
    "started_at": "2026-11-27T08:00:01Z",
    "finished_at": None,
    "progress": {
        "phase": "burnin",
        "iteration": 40,
        "total": 60,
        "fraction": 0.667,
        "leapfrog_per_s": 812.5,
        "acceptance": 0.74,
        "step_size": 0.031,
        "eta_s": 2.4,
        "updated_at": "2026-11-27T08:00:09Z",
    },
    "error": None,
    "version": None,
    "attempts": 1,
    "cancel_requested": False,
    "pid": 4242,
    "backend": "local",
    "scheduler": None,
}


class JobRecord(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_JOB_EXAMPLE]})

    id: str
    status: Status = Field(
        description="queued (also while a cluster scheduler has not started it yet), "
        "running, succeeded, failed or cancelled"
    )
    config: dict[str, Any] = Field(description="the validated training configuration")
    created_at: datetime
    started_at: datetime | None = Field(description="start of the latest attempt")
    finished_at: datetime | None
    progress: JobProgress
    error: str | None = Field(description="why the job failed (or that it was cancelled)")
    version: str | None = Field(description="the posterior version the job published")
    attempts: int = Field(description="training processes started for this job")
    cancel_requested: bool
    pid: int | None = Field(description="process id of the latest attempt (local backend)")
    sizes: dict[str, Any] | None = Field(
        None,
        description="known before compiling: the watch matrix (users, movies, watches, "
        "density) and the bytes the run needs per device and on the host, against what is "
        "available; `summary` says it in words",
    )
    backend: str = Field(description="how the job runs: local or slurm")
    scheduler: SchedulerInfo | None = Field(
        description="the cluster scheduler's view of the latest attempt (Slurm backend)"
    )

    @classmethod
    def of(cls, job: Job) -> JobRecord:
        fraction = (
            round(job.iteration / job.total, 4) if job.iteration is not None and job.total else None
        )
        status = job.effective_status
        scheduler = None
        if job.backend != "local":
            scheduler = SchedulerInfo(
                job_id=job.external_id, state=job.scheduler_state, reason=job.scheduler_reason
            )
        return cls(
            id=job.id,
            status=status,  # type: ignore[arg-type]
            config=job.config,
            created_at=_time(job.created_at),  # type: ignore[arg-type]
            started_at=None if status == "queued" else _time(job.started_at),
            finished_at=_time(job.finished_at),
            progress=JobProgress(
                phase=job.phase,
                iteration=job.iteration,
                total=job.total,
                fraction=fraction,
                leapfrog_per_s=job.leapfrog_per_s,
                acceptance=job.acceptance,
                step_size=job.step_size,
                eta_s=job.eta_s,
                updated_at=_time(job.updated_at),
            ),
            error=job.error,
            version=job.version,
            attempts=job.attempts,
            cancel_requested=job.cancel_requested,
            pid=job.pid,
            sizes=job.sizes,
            backend=job.backend,
            scheduler=scheduler,
        )


class JobList(BaseModel):
    jobs: list[JobRecord] = Field(description="newest first")
    total: int = Field(description="jobs matching the filter")
    limit: int
    offset: int


class JobLogs(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "6f1c0e9a2b7d4c11a0e3f5d7c9b1a2e4",
                    "status": "running",
                    "lines": ["burnin      40/60     812.5 leapfrog/s  accept 0.74"],
                }
            ]
        }
    )

    id: str
    status: Status
    lines: list[str] = Field(description="the last lines of the job's log (stdout + stderr)")
