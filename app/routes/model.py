"""GET /model, GET /healthz, GET /readyz and POST /admin/reload."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, HTTPException, Path, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from app.deps import (
    AdminDep,
    HolderDep,
    ServedDep,
    SettingsDep,
    job_store_of,
    no_model_message,
)
from app.http_cache import cache_control, etag_for, fresh, not_modified
from app.http_errors import error_responses, not_modified_response
from app.schemas import (
    ConvergenceReport,
    HealthResponse,
    LoadErrorInfo,
    ModelResponse,
    ReadyResponse,
    ReloadResponse,
)
from app.serving.model_state import ModelHolder, Served
from app.serving.queries import convergence_note
from app.settings import Settings

router = APIRouter()

_SUMMARY_LIMIT = 64
_IMAGES = (
    ".png",
    ".svg",
    ".jpg",
    ".jpeg",
    ".webp",
)  # list/dict entries above this are summarized, not listed


def json_safe(value: Any, *, depth: int = 0) -> Any:
    """Manifest/diagnostics values as small JSON: numpy to Python, long containers elided."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        value = value.tolist() if value.size <= _SUMMARY_LIMIT else f"<array {value.shape}>"
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        if depth > 4 or len(value) > _SUMMARY_LIMIT:
            return f"<{len(value)} entries>"
        return {str(k): json_safe(v, depth=depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if depth > 4 or len(value) > _SUMMARY_LIMIT:
            return f"<{len(value)} items>"
        return [json_safe(v, depth=depth + 1) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def manifest_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest without per-file checksums (counted instead) or diagnostics (shown
    separately)."""
    summary = {k: v for k, v in manifest.items() if k not in ("files", "diagnostics")}
    files = manifest.get("files") or {}
    summary["files"] = {
        "count": len(files),
        "bytes": sum(int(e.get("bytes", 0)) for e in files.values() if isinstance(e, dict)),
    }
    return json_safe(summary)


def convergence_report(served: Served, holder: ModelHolder) -> ConvergenceReport:
    """The served version's convergence record in full, and how the policy picked it."""
    record, selection = served.convergence, served.selection
    latest_pick = holder.selection
    passed_over = (
        latest_pick.passed_over
        if latest_pick is not None and latest_pick.version == served.name
        else []
    )
    return ConvergenceReport(
        status=record.status,
        converged=record.converged,
        warning=served.warning,
        policy=holder.policy,
        fallback=bool(selection and selection.fallback),
        passed_over=passed_over,
        thresholds={k: float(v) for k, v in record.thresholds.items() if _number(v)},
        figures={k: (float(v) if _number(v) else None) for k, v in record.figures.items()},
        failures=record.failures,
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


@router.get(
    "/model",
    response_model=ModelResponse,
    tags=["model"],
    summary="The served posterior version: manifest summary, diagnostics, last load error",
    description="Answers carry an ETag (of the answer: the version, its load and the last "
    "load error); send it back in If-None-Match to get 304 while nothing changed.",
    responses={304: not_modified_response()},
)
async def get_model(
    request: Request, response: Response, holder: HolderDep, settings: SettingsDep
) -> ModelResponse | Response:
    body = model_report(holder, settings)
    etag = etag_for(body.model_dump(mode="json"))
    cache = cache_control(settings.poll_interval_s)
    if fresh(request, etag):
        return not_modified(etag, cache)
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = cache
    return body


def model_report(holder: ModelHolder, settings: Settings) -> ModelResponse:
    """What GET /model reports about the served version (and the last failed load)."""
    served = holder.current
    failure = holder.last_error
    error = LoadErrorInfo(**failure._asdict()) if failure else None
    if served is None:
        return ModelResponse(
            model_version=None, store_dir=str(settings.store_dir), last_load_error=error
        )
    v = served.version
    return ModelResponse(
        model_version=served.name,
        store_dir=str(settings.store_dir),
        loaded_at=served.loaded_at,
        load_seconds=served.load_seconds,
        num_users=v.num_users,
        num_movies=v.num_movies,
        latent_dim=v.latent_dim,
        num_draws=v.num_draws,
        num_chains=v.num_chains,
        num_samples=v.num_samples,
        manifest=manifest_summary(dict(v.manifest)),
        diagnostics=json_safe(dict(v.diagnostics)),
        plots=[name for name in v.files if name.lower().endswith(_IMAGES)],
        convergence=convergence_report(served, holder),
        last_load_error=error,
    )


@router.get(
    "/model/files/{name:path}",
    tags=["model"],
    summary="A file stored with the served version (e.g. a trace plot)",
    response_class=FileResponse,
    responses={
        200: {"content": {"image/png": {}, "application/octet-stream": {}}},
        **error_responses(404, 422, 503),
    },
)
async def model_file(
    served: ServedDep, name: Annotated[str, Path(max_length=300, examples=["plots/trace.png"])]
) -> FileResponse:
    version = served.version
    if name not in version.files:  # only names listed in the manifest: no path escapes
        raise HTTPException(
            404, f"version {served.name} has no file {name!r}; GET /model lists its plots"
        )
    return FileResponse(version.file(name))


@router.get("/healthz", response_model=HealthResponse, tags=["health"], summary="Liveness")
async def healthz() -> HealthResponse:
    return HealthResponse(status="ok")


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    tags=["health"],
    summary="Readiness: a posterior is loaded (names its version and whether it converged)",
    description="200 once a version is served, converged or not: `convergence` says which, "
    "with the warning an unconverged or unchecked version carries. 503 before that, saying "
    "why: the training job under way (first start) with its progress, or what to run.",
    responses=error_responses(503),
)
async def readyz(request: Request, holder: HolderDep, settings: SettingsDep) -> ReadyResponse:
    served = holder.current
    if served is None:
        raise HTTPException(503, no_model_message(settings, job_store_of(request)))
    return ReadyResponse(
        status="ready", model_version=served.name, convergence=convergence_note(served)
    )


@router.post(
    "/admin/reload",
    response_model=ReloadResponse,
    tags=["admin"],
    summary="Load the version the serve policy picks now (bearer token)",
    description=(
        "Loads the version SHARDLENS_SERVE_POLICY picks (`latest`, or the newest converged "
        "one) if it differs from the served version, retrying a version that failed before, "
        "and swaps it in. Returns once the load finished; a failed load keeps the old version "
        "serving and reports why."
    ),
    dependencies=[AdminDep],
    responses=error_responses(401, 403),
)
async def reload(holder: HolderDep) -> ReloadResponse:
    outcome = await run_in_threadpool(holder.refresh, force=True)
    return ReloadResponse(
        model_version=outcome.served_version, changed=outcome.changed, error=outcome.error
    )
