"""ASGI middleware (plain ASGI, not BaseHTTPMiddleware, to keep the hot path cheap)."""

from __future__ import annotations

import logging
import re
import uuid
from urllib.parse import unquote_to_bytes

import orjson
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imstags.api.responses import error_body
from imstags.errors import BadRequest, InternalError
from imstags.errors import BodyTooLarge as BodyTooLargeError

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
                if log.isEnabledFor(logging.DEBUG):
                    _log_request(scope, message["status"], request_id)
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
                error_body(InternalError.code, f"Internal server error (request {request_id}).")
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


_CREDENTIAL_HEADERS = (b"authorization", b"x-auth-token")


def _log_request(scope: Scope, status: int, request_id: str) -> None:
    """One debug line per request. It names which credential headers came, never their
    values (nor the query string): tests/test_security.py checks no secret reaches the log."""
    present = [name.decode() for name, _ in scope.get("headers", ()) if name in _CREDENTIAL_HEADERS]
    log.debug(
        "%s %s -> %s [%s] credentials: %s",
        scope.get("method"),
        scope.get("path"),
        status,
        request_id,
        ", ".join(present) or "none",
    )


MAX_QUERY_BYTES = 8 * 1024
MAX_HEADER_BYTES = 32 * 1024
MAX_PATH_BYTES = 4 * 1024


class BodyTooLarge(StarletteHTTPException):
    """Raised by the counting ``receive`` when a body without Content-Length grows too large.

    A subclass of Starlette's HTTPException because FastAPI re-raises those from its body
    reading (it turns any other exception there into a generic 400), so the one error handler
    answers it with the 413 error body.
    """

    def __init__(self, detail: str = "The request body is too large.") -> None:
        super().__init__(status_code=413, detail=detail)


class NulInBody(StarletteHTTPException):
    def __init__(self) -> None:
        super().__init__(status_code=400, detail="The request body contains a NUL character.")


_JSON_NUL = b"\\u0000"


class InputLimitsMiddleware:
    """Refuse oversized or malformed input before any of it reaches a handler or the database.

    - A body larger than ``max_body_bytes`` is 413: at once from its Content-Length, without
      reading it; a chunked body (no Content-Length) is counted as it arrives and refused as
      soon as it passes the limit, so the server never holds more than the limit.
    - A path, query string or header block beyond a sane size is 414 / 431.
    - A NUL byte anywhere in the path, query or headers, or percent-encoding in the path or
      query that does not decode to UTF-8, is 400: PostgreSQL rejects NUL in text, and no
      legitimate client sends either.

    Every refusal is the usual error body. This runs inside ``RequestIdMiddleware`` so that
    refusals carry a request id too.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._check_head(scope)
        if refusal is not None:
            status, message = refusal
            await _send_error(send, status, message)
            return
        if _is_image_data_upload(scope):
            # Image data is binary and as large as max_image_bytes: the upload's own service
            # applies that limit as the data streams to the store.
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared < 0:
            await _send_error(send, 400, "The Content-Length header is invalid.")
            return
        if declared is not None and declared > self.max_body_bytes:
            await _send_error(send, BodyTooLargeError.status, self._too_large_message())
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, self._guarded(receive, _is_json(scope)), tracking_send)
        except StarletteHTTPException as exc:
            # Only reached when the body was read outside FastAPI's handlers (middleware).
            if started:
                raise
            await _send_error(send, exc.status_code, str(exc.detail))

    def _too_large_message(self) -> str:
        return f"The request body is larger than {self.max_body_bytes} bytes."

    def _guarded(self, receive: Receive, is_json: bool) -> Receive:
        """``receive`` that counts the body (for chunked bodies, whose size nobody declared)
        and, for JSON, refuses the escape ``\\u0000``: a NUL inside a string that would
        otherwise reach the database (PostgreSQL refuses NUL in text with an error)."""
        limit = self.max_body_bytes
        seen = 0
        tail = b""

        async def guarded_receive() -> Message:
            nonlocal seen, tail
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                seen += len(chunk)
                if seen > limit:
                    raise BodyTooLarge(self._too_large_message())
                if is_json and chunk:
                    window = tail + chunk
                    if _JSON_NUL in window:
                        raise NulInBody()
                    tail = window[-(len(_JSON_NUL) - 1) :]
            return message

        return guarded_receive

    @staticmethod
    def _check_head(scope: Scope) -> tuple[int, str] | None:
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        query: bytes = scope.get("query_string", b"")
        if len(raw_path) > MAX_PATH_BYTES:
            return 414, "The request path is too long."
        if len(query) > MAX_QUERY_BYTES:
            return 414, f"The query string is longer than {MAX_QUERY_BYTES} bytes."
        if not _decodes_cleanly(raw_path.split(b"?", 1)[0]) or not _decodes_cleanly(
            query.replace(b"+", b" ")
        ):
            return 400, "The path or query string contains NUL bytes or invalid UTF-8."
        total = 0
        for name, value in scope.get("headers", ()):
            total += len(name) + len(value) + 4
            if b"\x00" in value:
                return 400, "A header contains a NUL byte."
        if total > MAX_HEADER_BYTES:
            return 431, "The request headers are too large."
        return None


def _decodes_cleanly(raw: bytes) -> bool:
    """Percent-decoded, is it UTF-8 without a NUL byte?"""
    decoded = unquote_to_bytes(raw)
    if b"\x00" in decoded:
        return False
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_IMAGE_DATA_PATH = re.compile(r"/v2/images/[^/]+/file")


def _is_image_data_upload(scope: Scope) -> bool:
    return scope["method"] == "PUT" and _IMAGE_DATA_PATH.fullmatch(scope["path"]) is not None


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media.endswith(b"/json") or media.endswith(b"+json")
    return True  # FastAPI parses a body without Content-Type as JSON too


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


async def _send_error(send: Send, status: int, message: str) -> None:
    """A refusal of the request's head or body framing: always the format code IMG.0001."""
    body = orjson.dumps(error_body(BadRequest.code, message))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
