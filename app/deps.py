"""Request dependencies: settings, the model holder, the served version, admin auth.

They are `async def` on purpose: FastAPI runs plain `def` dependencies in a thread pool,
which costs more than everything these functions do.
"""

from __future__ import annotations

import hmac
import sqlite3
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.serving.model_state import ModelHolder, Served
from app.settings import Settings
from storage.job_record import Job, JobError
from storage.job_store import JobStore


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (`get_settings()` unless overridden)."""
    return request.app.state.settings


async def get_holder(request: Request) -> ModelHolder:
    return request.app.state.holder


def no_model_message(settings: Settings, jobs: JobStore | None = None) -> str:
    """Why nothing is served: a training job on its way (first start), or what to run."""
    active = _active_training(jobs)
    if active is not None:
        where = f", {active.phase} {active.iteration}/{active.total}" if active.total else ""
        eta = f", about {active.eta_s:.0f} s left" if active.eta_s is not None else ""
        return (
            f"no posterior is loaded yet: training job {active.id} is {active.effective_status}"
            f"{where}{eta}; the server loads its posterior as soon as it is published "
            f"(GET /jobs/{active.id})"
        )
    return (
        f"no posterior is loaded: the store {settings.store_dir} has no servable version. "
        f"Train one with `python -m training train --preset default --store {settings.store_dir}`"
        " (or start the server with `python -m app --train-if-empty`); the server picks it up "
        "by polling or on POST /admin/reload"
    )


def _active_training(jobs: JobStore | None) -> Job | None:
    """The oldest queued or running training job, if the job database can tell."""
    if jobs is None:
        return None
    try:
        active = [job for job in jobs.list_by_status("running", "queued") if job.kind == "train"]
    except (OSError, sqlite3.Error, JobError):
        return None
    return min(active, key=lambda job: job.created_at) if active else None


def job_store_of(request: Request) -> JobStore | None:
    """The app's job database (None before the lifespan opened it, or when it cannot)."""
    return getattr(request.app.state, "job_store", None)


async def require_served(
    request: Request,
    holder: Annotated[ModelHolder, Depends(get_holder)],
    settings: Annotated[Settings, Depends(get_app_settings)],
) -> Served:
    """The served version, read once for the whole request; 503 when there is none."""
    served = holder.current
    if served is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, no_model_message(settings, job_store_of(request))
        )
    return served


def lookup_user(served: Served, user_id: str) -> int:
    """The user's index in the served version; 404 (saying where to look) when unknown."""
    index = served.version.user_index(user_id)
    if index is None:
        raise HTTPException(
            404, f"user {user_id} is not in posterior version {served.name}; see GET /users"
        )
    return int(index)


_bearer = HTTPBearer(auto_error=False, description="SHARDLENS_API_TOKEN")


async def require_admin(
    settings: Annotated[Settings, Depends(get_app_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Bearer-token check for /admin routes (constant-time comparison)."""
    if settings.api_token is None or not settings.api_token.get_secret_value():
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "admin routes are disabled: set SHARDLENS_API_TOKEN to enable them",
        )
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token: send 'Authorization: Bearer <SHARDLENS_API_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    expected = settings.api_token.get_secret_value().encode()
    if not hmac.compare_digest(credentials.credentials.encode(), expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "wrong bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
ServedDep = Annotated[Served, Depends(require_served)]
AdminDep = Depends(require_admin)
