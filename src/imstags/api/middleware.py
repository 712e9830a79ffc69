"""ASGI middleware (plain ASGI, not BaseHTTPMiddleware, to keep the hot path cheap)."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from time import perf_counter
from urllib.parse import unquote_to_bytes

import orjson
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imstags.api.responses import error_body
from imstags.errors import BadRequest, InternalError
from imstags.errors import BodyTooLarge as BodyTooLargeError

log = logging.getLogger("imstags.api")
access_log = logging.getLogger("imstags.access")
REQUEST_ID_HEADER = b"x-request-id"


RequestObserver = Callable[[str, str, int, float], None]
"""Called once per answered request with (route template, method, status, seconds)."""


class RequestIdMiddleware:
    """Give every response an ``X-Request-Id``, turn an unexpected exception into a 500, and
    write the request's log line (``imstags.access``, level info) and metrics.

    It sits outside everything else, so that even a crash answers with the error body and the
    id under which the traceback was logged; the client never sees the traceback itself. The
    log line and ``observer`` (the metrics) come after the response: the route template is
    known only once the router has matched, and the latency includes sending the body.
    """

    def __init__(self, app: ASGIApp, observer: RequestObserver | None = None) -> None:
        self.app = app
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = perf_counter()
        request_id = "req-" + uuid.uuid4().hex
        scope["imstags.request_id"] = request_id
        id_header = (REQUEST_ID_HEADER, request_id.encode())
        status = 0  # until the response starts

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception(
                "unhandled error in %s %s [%s]",
                scope.get("method"),
                _route_of(scope),
                request_id,
                extra={"request_id": request_id},
            )
            if status:  # the response had started: nothing more can be sent
                raise
            status = 500
            await _send_internal_error(send, request_id, id_header)
        finally:
            seconds = perf_counter() - began
            route = _route_of(scope)
            if self.observer is not None:
                self.observer(route, scope["method"], status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                _log_request(scope, route, status, seconds, request_id)


async def _send_internal_error(send: Send, request_id: str, id_header: tuple[bytes, bytes]) -> None:
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


def _route_of(scope: Scope) -> str:
    """The matched route's template (``/v2/{project_id}/images/tags``), never the raw path:
    ids stay out of metric labels; unmatched paths (404) share one value."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


_CREDENTIAL_HEADERS = (b"authorization", b"x-auth-token")


def _log_request(scope: Scope, route: str, status: int, seconds: float, request_id: str) -> None:
    """One line per request. It names which credential headers came, never their values (nor
    the query string, nor the raw path): tests/test_security.py checks no secret reaches the
    log."""
    present = [name.decode() for name, _ in scope.get("headers", ()) if name in _CREDENTIAL_HEADERS]
    client = scope.get("client")
    project_id = scope.get("path_params", {}).get("project_id")
    latency_ms = round(seconds * 1000, 3)
    access_log.info(
        "%s %s %s %.3fms",
        scope["method"],
        route,
        status,
        latency_ms,
        extra={
            "request_id": request_id,
            "project_id": project_id,
            "method": scope["method"],
            "route": route,
            "status": status,
            "latency_ms": latency_ms,
            "client": client[0] if client else None,
            "credentials": ",".join(present) or "none",
        },
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


class InvalidUnicodeInBody(StarletteHTTPException):
    def __init__(self) -> None:
        super().__init__(
            status_code=400,
            detail="The request body contains text that is not valid Unicode (a lone surrogate).",
        )


_JSON_NUL = b"\\u0000"
# A JSON escape of a surrogate code point (U+D800-U+DFFF): a pair is valid, a lone one is not.
_JSON_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class InputLimitsMiddleware:
    """Refuse oversized or malformed input before any of it reaches a handler or the database.

    - A body larger than ``max_body_bytes`` is 413: at once from its Content-Length, without
      reading it; a chunked body (no Content-Length) is counted as it arrives and refused as
      soon as it passes the limit, so the server never holds more than the limit.
    - A path, query string or header block beyond a sane size is 414 / 431.
    - A NUL byte anywhere in the path, query or headers, or percent-encoding in the path or
      query that does not decode to UTF-8 (an encoded surrogate does not), is 400: PostgreSQL
      rejects NUL in text, and no legitimate client sends either.
    - A JSON body with ``\\u0000`` or a lone surrogate escape in a string is 400.

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
        and, for JSON, refuses what must not reach a handler or the database: the escape
        ``\\u0000`` (PostgreSQL refuses NUL in text) and lone surrogates (``"\\ud800"``: the
        JSON parser makes a ``str`` of it that no driver can encode). A JSON body is handed on
        whole, in one message, once it has been checked; it is at most ``max_body_bytes``."""
        limit = self.max_body_bytes
        seen = 0

        async def guarded_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] != "http.request":
                return message
            chunks = [message.get("body", b"")]
            seen += len(chunks[0])
            while is_json and message.get("more_body", False) and seen <= limit:
                message = await receive()
                if message["type"] != "http.request":
                    return message
                chunks.append(message.get("body", b""))
                seen += len(chunks[-1])
            if seen > limit:
                raise BodyTooLarge(self._too_large_message())
            if not is_json:
                return message
            body = b"".join(chunks)
            if _JSON_NUL in body:
                raise NulInBody()
            if _JSON_SURROGATE_ESCAPE.search(body) and _has_lone_surrogate(body):
                raise InvalidUnicodeInBody()
            return {"type": "http.request", "body": body, "more_body": False}

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


def _has_lone_surrogate(body: bytes) -> bool:
    """Does the JSON document hold a string (or key) with a lone surrogate?

    Parsed as the framework parses it; a body that does not parse is left to the framework's
    own 400. Walked without recursion, since nesting is bounded only by the parser's limit.
    """
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return False
    pending: list[object] = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


_IMAGE_DATA_PATH = re.compile(r"/v2/images/[^/]+/file")


def _is_image_data_upload(scope: Scope) -> bool:
    return scope["method"] == "PUT" and _IMAGE_DATA_PATH.fullmatch(scope["path"]) is not None


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            # application/json, ...+json, and Glance's PATCH type ...-json-patch
            return media.endswith((b"/json", b"+json", b"-json-patch"))
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
