"""ReDoc served offline: fastapi-offline's bundled `redoc.standalone.js` with a
Content-Security-Policy that keeps the page on this server.

fastapi-offline serves Swagger UI (/docs) and ReDoc's script from the package, but ReDoc 2's
sidebar always loads its "API docs by Redocly" logo from cdn.redoc.ly. The policy below makes
the browser refuse that image (ReDoc then drops it) and anything else that would leave the
host, so /redoc renders the same with or without a network.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse

__all__ = ["OFFLINE_DOCS_STATIC", "REDOC_POLICY", "install_redoc"]

OFFLINE_DOCS_STATIC = "/static-offline-docs"  # fastapi-offline's default mount point
# ReDoc renders with inline styles and an inline start-up script and runs its search index
# in a blob: worker; everything else must come from this server.
REDOC_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' blob:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "worker-src 'self' blob:; connect-src 'self'"
)


def install_redoc(app: FastAPI, *, path: str = "/redoc") -> None:
    """Serve ReDoc at `path` from fastapi-offline's assets, under `REDOC_POLICY`. The app must
    be a `fastapi_offline.FastAPIOffline(redoc_url=None)` (which mounts the assets)."""

    @app.get(path, include_in_schema=False)
    async def redoc_html(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        response = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{OFFLINE_DOCS_STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{OFFLINE_DOCS_STATIC}/favicon.png",
            with_google_fonts=False,
        )
        response.headers["Content-Security-Policy"] = REDOC_POLICY
        return response
