"""The app factory: `create_app(settings) -> FastAPI` (uvicorn: `app.main:create_app --factory`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from app import errors
from app.docs_offline import install_redoc
from app.jobs.service import start_jobs, stop_jobs
from app.middleware import BodySizeLimit
from app.model_state import ModelHolder
from app.params import single_valued_query
from app.routes import catalog, explore, jobs, model, recommend
from app.settings import Settings, get_settings

log = logging.getLogger("shardlens.serve")
STATIC_DIR = Path(__file__).parent / "static"
# The HTTP API's version (OpenAPI `info.version`); CHANGELOG.md says what changed.
API_VERSION = "0.2.0"

DESCRIPTION = """\
Posterior-based movie recommendations. A training job fits Bayesian matrix factorization to
the MovieLens watch matrix with sharded HMC and publishes posterior samples; this server
loads the newest version, counts each posterior sample's top unwatched movie per user, and
swaps in new versions without downtime.

User and movie ids are text everywhere (paths, bodies, responses): a MovieLens id is its
decimal text (`"405"`), an interactions file keeps its own ids (`"tt0111161"`).
"""


def create_app(settings: Settings | None = None, *, holder: ModelHolder | None = None) -> FastAPI:
    """Build the app. Nothing is loaded here: the posterior loads in `lifespan`."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        active = holder or ModelHolder(
            settings.store_dir,
            chunk_users=settings.precompute_chunk_users,
            cache_dir=settings.cache_dir,
            policy=settings.serve_policy,
        )
        app.state.holder = active
        outcome = await asyncio.to_thread(active.refresh)
        if outcome.served_version is None:
            log.warning("no posterior to serve yet in %s", settings.store_dir)
        active.start_polling(settings.poll_interval_s)
        start_jobs(app, settings, reload=lambda _version: active.refresh(force=True))
        try:
            yield
        finally:
            await asyncio.to_thread(stop_jobs, app)
            await asyncio.to_thread(active.stop)

    # Swagger UI and ReDoc from fastapi-offline's bundled assets, not a CDN (docs/API-DOCS.md).
    app = FastAPIOffline(
        redoc_url=None,  # install_redoc below: the same assets under a no-CDN policy
        title="shardlens",
        summary="Movie recommendations from a Bayesian matrix factorization posterior",
        description=DESCRIPTION,
        version=API_VERSION,
        lifespan=lifespan,
        dependencies=[Depends(single_valued_query)],
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from swagger.io
    )
    app.state.settings = settings
    install_redoc(app)
    errors.install(app)
    app.include_router(recommend.router)
    app.include_router(catalog.router)
    app.include_router(model.router)
    app.include_router(jobs.router)
    app.include_router(explore.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        """The web page: pick a user, see the posterior's picks."""
        return FileResponse(STATIC_DIR / "index.html")

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
