"""The job API: start, list, inspect, tail, cancel and resume training jobs (bearer token)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from app.deps import AdminDep, SettingsDep
from app.jobs.job_config import JobConfig
from app.jobs.launchers.slurm_config import ResourceError, effective_resources, local_devices
from app.jobs.logs import log_path, tail_lines
from app.jobs.runner import JobRunner
from app.jobs.schemas import JobList, JobLogs, JobRecord, Status
from app.jobs.source_check import DataSourceError, validate_items, validate_source
from app.schemas import ErrorBody, ValidationErrorBody
from app.settings import Settings
from storage.job_record import InvalidTransitionError, Job, JobNotFoundError
from storage.job_store import JobStore

router = APIRouter(prefix="/jobs", tags=["jobs"], dependencies=[AdminDep])

_ERRORS = {
    400: "The body cannot be parsed (not UTF-8 JSON); the message says what to send.",
    401: "Missing or wrong bearer token.",
    403: "Job endpoints are disabled until SHARDLENS_API_TOKEN is set.",
    404: "No job has this id.",
    409: "The job's status does not allow this (e.g. resuming a running job).",
    415: "The body is not sent as JSON (Content-Type: application/json).",
    422: "Invalid body or parameter (also: a data path outside the data root, Slurm "
    "resources the server does not allow).",
    503: "The job database cannot be opened (e.g. a read-only store); the message says why.",
}
_LOCATION = {"Location": {"description": "the job's URL, /jobs/{id}", "schema": {"type": "string"}}}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {
            "model": ValidationErrorBody if code == 422 else ErrorBody,
            "description": _ERRORS[code],
        }
        for code in (401, 403, *codes, 503)
    }


async def require_json(request: Request) -> None:
    """415 for a body declared as something other than JSON (`text/plain`, a form, ...)."""
    declared = request.headers.get("content-type")
    if declared is None:
        return
    media = declared.split(";")[0].strip().lower()
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"the body is sent as {media!r}; send JSON with 'Content-Type: application/json'",
        )


async def get_job_store(request: Request) -> JobStore:
    store = request.app.state.job_store
    if store is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, request.app.state.jobs_unavailable)
    return store


async def get_runner(request: Request) -> JobRunner | None:
    return getattr(request.app.state, "job_runner", None)


JobId = Annotated[
    str,
    PathParam(
        max_length=64,
        description="the job's id, from POST /jobs",
        examples=["6f1c0e9a2b7d4c11a0e3f5d7c9b1a2e4"],
    ),
]
StoreDep = Annotated[JobStore, Depends(get_job_store)]
RunnerDep = Annotated[JobRunner | None, Depends(get_runner)]


def _get(store: JobStore, job_id: str) -> Job:
    try:
        return store.get(job_id)
    except JobNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{exc}; list jobs with GET /jobs") from None


def _accepted(response: Response, job: Job) -> JobRecord:
    response.headers["Location"] = f"/jobs/{job.id}"
    return JobRecord.of(job)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobRecord,
    summary="Start a training job (queued; runs as a separate process)",
    description=(
        "Queues a training run of the given preset with optional overrides. Jobs start one "
        "at a time (SHARDLENS_MAX_CONCURRENT_JOBS) in the order they were created, each as a "
        "separate `python -m training train` process, or as a Slurm batch job with "
        "SHARDLENS_JOB_BACKEND=slurm (resources in `slurm`). When it succeeds the new "
        "posterior version is published and served. The `Location` header names the job's URL."
    ),
    responses={202: {"headers": _LOCATION}, **_errors(400, 415, 422)},
    dependencies=[Depends(require_json)],
)
async def create_job(
    config: JobConfig,
    response: Response,
    store: StoreDep,
    runner: RunnerDep,
    settings: SettingsDep,
) -> JobRecord:
    data = items = None
    try:
        if config.data is not None:
            data = validate_source(config.data, data_root=settings.data_dir)
        if config.items is not None:
            items = validate_items(config.items, data_root=settings.data_dir)
    except DataSourceError as exc:
        field = "items" if data is not None or config.data is None else "data"
        raise RequestValidationError(
            [{"loc": ("body", field), "msg": str(exc), "type": "value_error"}]
        ) from None
    _check_resources(config, settings)
    job = await run_in_threadpool(
        store.create, config=config.to_record(data=data, items=items), backend=settings.job_backend
    )
    if runner is not None:
        runner.wake()
    return _accepted(response, job)


def _check_resources(config: JobConfig, settings: Settings) -> None:
    """422 for Slurm resources on the local backend, options off the allow-list, or devices
    that do not split over the Slurm tasks."""
    try:
        if settings.job_backend != "slurm":
            if config.slurm is not None:
                raise ResourceError(
                    "`slurm` resources apply only when the server runs jobs on Slurm "
                    "(SHARDLENS_JOB_BACKEND=slurm); this server runs them locally"
                )
            return
        local_devices(config.devices, effective_resources(settings.slurm, config.slurm))
    except ResourceError as exc:
        raise RequestValidationError(
            [{"loc": ("body", "slurm"), "msg": str(exc), "type": "value_error"}]
        ) from None


@router.get(
    "",
    response_model=JobList,
    summary="List jobs, newest first (paged)",
    responses=_errors(422),
)
async def list_jobs(
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=200, description="jobs per page")] = 20,
    offset: Annotated[int, Query(ge=0, le=10**9, description="jobs to skip")] = 0,
    status_filter: Annotated[
        Status | None, Query(alias="status", description="only jobs with this status")
    ] = None,
) -> JobList:
    page = await run_in_threadpool(store.list, limit=limit, offset=offset, status=status_filter)
    return JobList(
        jobs=[JobRecord.of(j) for j in page.jobs],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get(
    "/{job_id}",
    response_model=JobRecord,
    summary="One job: status, progress, timestamps, error, produced version",
    responses=_errors(404, 422),
)
async def get_job(job_id: JobId, store: StoreDep) -> JobRecord:
    return JobRecord.of(await run_in_threadpool(_get, store, job_id))


@router.get(
    "/{job_id}/logs",
    response_model=JobLogs,
    summary="The tail of a job's log (the training process's stdout and stderr)",
    responses=_errors(404, 422),
)
async def get_job_logs(
    job_id: JobId,
    store: StoreDep,
    settings: SettingsDep,
    lines: Annotated[int, Query(ge=1, le=10_000, description="lines from the end")] = 100,
) -> JobLogs:
    job = await run_in_threadpool(_get, store, job_id)
    path = job.log_path or log_path(settings.store_dir, job.id)
    tail = await run_in_threadpool(tail_lines, path, lines)
    return JobLogs(id=job.id, status=job.effective_status, lines=tail)  # type: ignore[arg-type]


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobRecord,
    summary="Cancel a job",
    description=(
        "A queued job is cancelled at once. A running job's process gets SIGTERM (it stops at "
        "its next checkpoint), then SIGKILL after SHARDLENS_JOB_CANCEL_GRACE_S seconds; the "
        "job ends `cancelled` and publishes nothing. A Slurm job is cancelled with `scancel` "
        "(Slurm sends SIGTERM, then SIGKILL after its KillWait). Poll GET /jobs/{id} to see "
        "it end."
    ),
    responses=_errors(404, 409, 422),
)
async def cancel_job(job_id: JobId, store: StoreDep, runner: RunnerDep) -> JobRecord:
    job = await run_in_threadpool(_get, store, job_id)
    if job.finished:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"job {job_id} is already {job.status}; only queued or running jobs can be cancelled",
        )
    job = await run_in_threadpool(store.request_cancel, job_id)
    if runner is not None:
        runner.wake()
    return JobRecord.of(job)


@router.post(
    "/{job_id}/resume",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobRecord,
    summary="Resume a failed or cancelled job from its last checkpoint",
    description=(
        "Queues the job again with the same configuration; its next process runs with "
        "`--resume` and continues from the checkpoint its previous attempt left behind."
    ),
    responses={202: {"headers": _LOCATION}, **_errors(404, 409, 422)},
)
async def resume_job(
    job_id: JobId, response: Response, store: StoreDep, runner: RunnerDep
) -> JobRecord:
    await run_in_threadpool(_get, store, job_id)
    try:
        job = await run_in_threadpool(store.requeue, job_id)
    except InvalidTransitionError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    if runner is not None:
        runner.wake()
    return _accepted(response, job)
