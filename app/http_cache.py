"""HTTP caching: ETags from the model version and the normalised query, If-None-Match, and
Cache-Control bounded by the poll interval (RFC 9110 section 8.8.3, RFC 9111)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import Request, Response

__all__ = ["cache_control", "etag_for", "fresh", "not_modified"]


def etag_for(*parts: Any) -> str:
    """A strong ETag (quoted) for a JSON-serialisable description of an answer: the model
    version and the normalised query (sorted sets, defaults filled in)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def fresh(request: Request, etag: str) -> bool:
    """Whether the request's If-None-Match already names `etag` (weak comparison, as
    RFC 9110 section 13.1.2 prescribes for If-None-Match; `*` matches any)."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags


def cache_control(poll_interval_s: float) -> str:
    """How long an answer stays valid: until the next version can be served, which the
    server notices within one poll interval; without polling, revalidate every time."""
    seconds = int(poll_interval_s)
    return f"private, max-age={seconds}" if seconds > 0 else "private, no-cache"


def not_modified(etag: str, cache: str) -> Response:
    """304 with the validators a cache needs (and no body)."""
    return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache})
