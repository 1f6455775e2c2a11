"""Error bodies: every error is JSON `{"detail": "..."}` saying what was wrong."""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match, Mount

from app.schemas import ErrorBody, ValidationErrorBody


def json_response(body: dict[str, Any], status_code: int) -> Response:
    return Response(orjson.dumps(body), status_code, media_type="application/json")


def _message(error: dict[str, Any]) -> str:
    if error.get("type") == "json_invalid":  # loc is ("body", character offset)
        offset = error.get("loc", (None, "?"))[-1]
        why = (error.get("ctx") or {}).get("error", "cannot be decoded")
        return (
            f"malformed JSON at character {offset} ({why}); "
            'send a JSON object, e.g. {"preset": "smoke"}'
        )
    return str(error.get("msg", "invalid value"))


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's own 422 shape, `{"detail": [{"type", "loc", "msg", "input"}, ...]}`: one
    entry per problem, each saying where (`loc`) and what to change (`msg`)."""
    assert isinstance(exc, RequestValidationError)
    errors = []
    for error in exc.errors():
        entry = {
            "type": error.get("type"),
            "loc": list(error.get("loc", ())),
            "msg": _message(error),
        }
        if "input" in error and error.get("type") not in ("missing", "json_invalid"):
            entry["input"] = error["input"]
        errors.append(entry)
    if not errors:
        errors = [{"type": "invalid", "loc": [], "msg": "invalid request"}]
    # The standard library's encoder: an echoed input may be an integer beyond 64 bits.
    body = json.dumps(jsonable_encoder({"detail": errors}), ensure_ascii=False)
    return Response(body.encode(), 422, media_type="application/json")


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _leaf_routes(route: Any) -> list[Any]:
    """The routes an included router holds (FastAPI keeps them behind `original_router`)."""
    inner = getattr(route, "original_router", None)
    if inner is None:
        return [route]
    return [leaf for child in inner.routes for leaf in _leaf_routes(child)]


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. (Starlette's own `Allow` names only the
    first route that matched the path, e.g. POST but not GET for /jobs.) A path that is a
    route of its own (`/recommend/batch`) lists that route's methods only, as the schema
    does, though a templated route (`/recommend/{user_id}`) also matches it."""
    routes = [r for r in request.app.router.routes if not isinstance(r, Mount)]
    leaves = [leaf for route in routes for leaf in _leaf_routes(route)]
    literal = [r for r in leaves if getattr(r, "path", None) == request.url.path]
    routes = literal or routes
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


_TEXT = {
    401: "Missing or wrong bearer token.",
    403: "Admin routes are disabled until SHARDLENS_API_TOKEN is set.",
    404: "Unknown user or movie id in the served version.",
    413: "Request body larger than SHARDLENS_MAX_BODY_BYTES.",
    422: "Invalid parameter or body: FastAPI's shape, one entry per problem.",
    503: "No posterior is loaded yet; the message says how to train one.",
}
_EXAMPLES: dict[int, Any] = {
    401: {"detail": "missing bearer token: send 'Authorization: Bearer <SHARDLENS_API_TOKEN>'"},
    403: {"detail": "admin routes are disabled: set SHARDLENS_API_TOKEN to enable them"},
    404: {
        "detail": "user 999999 is not in posterior version 20261127T074000.000000Z-1a2b; "
        "see GET /users"
    },
    413: {"detail": "request body exceeds 65536 bytes (SHARDLENS_MAX_BODY_BYTES)"},
    422: {
        "detail": [
            {
                "type": "less_than_equal",
                "loc": ["query", "k"],
                "msg": "Input should be less than or equal to 100000",
                "input": "500000",
            }
        ]
    },
    503: {
        "detail": "no posterior is loaded: the store var/store has no servable version. "
        "Train one with `python -m training train --preset default --store var/store`"
    },
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations for the given error status codes, each with an example body."""
    return {
        code: {
            "model": ValidationErrorBody if code == 422 else ErrorBody,
            "description": _TEXT[code],
            "content": {"application/json": {"example": _EXAMPLES[code]}},
        }
        for code in codes
    }


def not_modified_response() -> dict[str, Any]:
    """OpenAPI declaration of a 304 answer to If-None-Match (no body)."""
    return {
        "description": "Not modified: the If-None-Match ETag is still current (no body).",
        "content": {},
        "headers": {"ETag": {"schema": {"type": "string"}, "description": "the same ETag"}},
    }


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(HTTPException, routing_error_handler)
