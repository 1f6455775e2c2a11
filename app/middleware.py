"""ASGI middleware: a request body size limit, and HEAD answered as GET without a body."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http_errors import json_response


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a streamed body passes the limit. An HTTPException, so
    FastAPI's body parsing re-raises it (as a 413) instead of turning it into a 400."""

    def __init__(self, max_bytes: int):
        super().__init__(413, _too_large_message(max_bytes))


def _too_large_message(max_bytes: int) -> str:
    return f"request body exceeds {max_bytes} bytes (SHARDLENS_MAX_BODY_BYTES)"


class BodySizeLimit:
    """Answer 413 to requests whose body exceeds `max_bytes` (declared or streamed)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = json_response({"detail": _too_large_message(self.max_bytes)}, 413)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await too_large(scope, receive, send)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await too_large(scope, receive, send)


class HeadAsGet:
    """Answer HEAD on every GET route (RFC 9110 section 9.3.2): run the request as GET and
    send its status and headers (Content-Length included) without the body. Uptime probes
    and load balancers that check with HEAD then see what GET would answer."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def drop_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, drop_body)
