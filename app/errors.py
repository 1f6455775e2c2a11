"""Error bodies: every error is JSON `{"detail": "..."}` saying what was wrong."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from app.schemas import ErrorBody, ValidationErrorBody


def json_response(body: dict[str, Any], status_code: int) -> Response:
    return Response(orjson.dumps(body), status_code, media_type="application/json")


def _describe(error: dict[str, Any]) -> str:
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
