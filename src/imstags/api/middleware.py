"""ASGI middleware (plain ASGI, not BaseHTTPMiddleware, to keep the hot path cheap)."""

from __future__ import annotations

import logging
import uuid

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imstags.api.responses import error_body

log = logging.getLogger("imstags.api")
REQUEST_ID_HEADER = b"x-request-id"


class RequestIdMiddleware:
    """Give every response an ``X-Request-Id``, and turn an unexpected exception into a 500.

    It sits outside everything else, so that even a crash answers with the error body and the
    id under which the traceback was logged; the client never sees the traceback itself.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req-" + uuid.uuid4().hex
        scope["imstags.request_id"] = request_id
        id_header = (REQUEST_ID_HEADER, request_id.encode())
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception(
                "unhandled error in %s %s [%s]", scope.get("method"), scope.get("path"), request_id
            )
            if started:
                raise
            body = orjson.dumps(
                error_body("IMG.0061", f"Internal server error (request {request_id}).")
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        id_header,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
