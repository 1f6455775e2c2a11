"""The app factory: `create_app(settings) -> FastAPI` (uvicorn: `app.main:create_app --factory`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from app import http_errors
from app.docs_offline import install_redoc
from app.heap import bound_heap_retention
from app.jobs.service import start_jobs, stop_jobs
from app.middleware import BodySizeLimit, HeadAsGet
from app.openapi import complete_schema
from app.params import single_valued_query, unique_json_keys
from app.prometheus_metrics import install_metrics
from app.routes import catalog, explore, jobs, model, recommend
from app.serving.model_state import ModelHolder
from app.settings import Settings, get_settings

log = logging.getLogger("shardlens.serve")
STATIC_DIR = Path(__file__).parent / "static"
# The HTTP API's version (OpenAPI `info.version`); CHANGELOG.md says what changed.
API_VERSION = "0.3.0"

DESCRIPTION = """\
Posterior-based movie recommendations. A training job fits Bayesian matrix factorization to
the MovieLens watch matrix with sharded HMC and publishes posterior samples; this server
loads the newest version, counts each posterior sample's top unwatched movie per user, ranks
movies by pick count or posterior-mean watch probability, folds in new users from the movies
they watched, and swaps in new versions without downtime.

Every GET route also answers HEAD. `/recommend/{user_id}` and `/model` answers carry an ETag
(If-None-Match gives 304) and a Cache-Control lifetime of at most the poll interval. Every
answer carries `X-Request-ID` (sent by the client, or made up), which also tags the server's
log lines for that request. Prometheus metrics are at `/metrics`.

User and movie ids are text everywhere (paths, bodies, responses): a MovieLens id is its
decimal text (`"405"`), an interactions file keeps its own ids (`"tt0111161"`).
"""


def create_app(settings: Settings | None = None, *, holder: ModelHolder | None = None) -> FastAPI:
    """Build the app. Nothing is loaded here: the posterior loads in `lifespan`."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not bound_heap_retention():
            log.info("malloc settings left as they are: the C library is not glibc")
        active = holder or ModelHolder(
            settings.store_dir,
            chunk_users=settings.precompute_chunk_users,
            cache_dir=settings.cache_dir,
            policy=settings.serve_policy,
            genre_picks_max_bytes=int(settings.genre_picks_max_mb * 2**20),
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
        dependencies=[Depends(single_valued_query), Depends(unique_json_keys)],
        generate_unique_id_function=_operation_id,
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from swagger.io
    )
    app.state.settings = settings
    install_redoc(app)
    http_errors.install(app)
    app.include_router(recommend.router)
    app.include_router(catalog.router)
    app.include_router(model.router)
    app.include_router(jobs.router)
    app.include_router(explore.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_metrics(app)

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
    app.add_middleware(HeadAsGet)
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete_schema(
                FastAPI.openapi(app),
                max_body_bytes=settings.max_body_bytes,
                batch_max_users=settings.batch_max_users,
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _operation_id(route: APIRoute) -> str:
    """Readable operation ids: the handler's name (`recommend_for_user`), not FastAPI's
    generated `get_recommendations_recommend__user_id__get`."""
    return route.name
