"""Error bodies: every error is JSON `{"detail": "..."}` saying what was wrong."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match, Mount

from app.schemas import ErrorBody, ValidationErrorBody


def json_response(body: dict[str, Any], status_code: int) -> Response:
    return Response(orjson.dumps(body), status_code, media_type="application/json")


def _describe(error: dict[str, Any]) -> str:
    if error.get("type") == "json_invalid":  # loc is ("body", character offset)
        offset = error.get("loc", (None, "?"))[-1]
        why = (error.get("ctx") or {}).get("error", "cannot be decoded")
        return (
            f"body: malformed JSON at character {offset} ({why}); "
            'send a JSON object, e.g. {"preset": "smoke"}'
        )
    where = ".".join(str(part) for part in error.get("loc", ()))
    message = error.get("msg", "invalid value")
    if "input" in error and error.get("type") != "missing":
        shown = repr(error["input"])
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return f"{where}: {message} (got {shown})"
    return f"{where}: {message}"


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {key: value for key, value in e.items() if key in ("loc", "msg", "type")}
        for e in exc.errors()
    ]
    detail = "; ".join(_describe(e) for e in exc.errors()) or "invalid request"
    return json_response({"detail": detail, "errors": errors}, 422)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. (Starlette's own `Allow` names only the
    first route that matched the path, e.g. POST but not GET for /jobs.)"""
    routes = [r for r in request.app.router.routes if not isinstance(r, Mount)]
    return [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    ]


async def routing_error_handler(request: Request, exc: Exception) -> Response:
    """The framework's own 400/404/405 say what to do instead of a bare "Not Found"."""
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if exc.status_code == 404 and exc.detail == "Not Found":
        exc = HTTPException(
            404, f"no endpoint at {path}; the API is listed at /docs (schema: /openapi.json)"
        )
    elif exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        exc = HTTPException(
            400,
            "the request body cannot be parsed: send UTF-8 JSON with "
            "'Content-Type: application/json'",
        )
    elif exc.status_code == 405 and exc.detail == "Method Not Allowed":
        allowed = ", ".join(allowed_methods(request))
        exc = HTTPException(
            405,
            f"{request.method} is not allowed on {path}; use {allowed}",
            headers={**(exc.headers or {}), "Allow": allowed},
        )
    return await http_exception_handler(request, exc)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations for the given error status codes."""
    text = {
        401: "Missing or wrong bearer token.",
        403: "Admin routes are disabled until SHARDLENS_API_TOKEN is set.",
        404: "Unknown user or movie id in the served version.",
        413: "Request body larger than SHARDLENS_MAX_BODY_BYTES.",
        422: "Invalid parameter; the message lists each problem.",
        503: "No posterior is loaded yet; the message says how to train one.",
    }
    return {
        code: {
            "model": ValidationErrorBody if code == 422 else ErrorBody,
            "description": text[code],
        }
        for code in codes
    }


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(HTTPException, routing_error_handler)
