"""The lean path: the hottest routes served by plain ASGI code, before FastAPI's router.

Why: for one client sending one request at a time, the framework cost more than the work:
FastAPI's routing through every route, its dependency resolution, pydantic's body model and
Starlette's Request. Measured with ``benchmarks/round_trip.py`` (one connection, SDK-signed,
SQLite, on a 2-core machine shared with other work), the server's CPU per request went from
422 to 228 µs for the core endpoint, 396 to 297 µs with a fresh signature on every request,
and 1,107 to 787 µs for a tag write (PostgreSQL: 580 to 470, 645 to 517, 1,723 to 1,215);
a bare ASGI callable under the same uvicorn spends 40-70 µs. Here a request to a hot route is
matched by one regular expression, its JSON body checked by a few type tests, and the handler
called directly.

What is *not* different: the route stays declared in FastAPI (OpenAPI, the fault rules' route
table, the fallback below), the handler calls the same authentication
(:func:`~imstags.api.security.scope_principal`, :func:`~imstags.api.security.own_project`), the
same service method and the same response builder as the FastAPI handler, and an exception is
answered by the same :func:`~imstags.api.errors.error_response`. The middleware sits inside the
request id, input limits and fault injection, so those apply unchanged, and it puts the matched
APIRoute and its path parameters in the scope, as the router does, for the access log and the
metrics' route label.

Anything a hot route does not handle exactly as FastAPI would it hands to FastAPI, with the
body it read replayed: a body it cannot parse or whose shape it does not know (FastAPI's own
validation error answers it), an unexpected content type, a declared body where none belongs,
another method or path shape. A handler returns None for those, before it has done anything.
So every error of the request's format is FastAPI's, byte for byte, by construction.

The router takes the first route whose path and method match, so a request is served here
only if no route declared before the hot one matches it: the table, built at the first request,
keeps each hot route's earlier routes of the same method, and a request that one of them
matches goes to FastAPI. A mount or a route of unknown kind before a hot route turns that hot
route off.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.convertors import Convertor
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imstags.api.errors import error_response

HOT_ROUTES_STATE = "hot_routes"
"""``app.state`` attribute: the app's list of :class:`HotRoute` (empty: the lean path is off)."""


@dataclass(frozen=True)
class HotRequest:
    """What a hot route's handler gets: the scope, the path parameters, and for a route that
    takes a JSON body the body as received and as parsed."""

    scope: Scope
    params: dict[str, Any]
    body: BufferedBody
    document: Any = None


HotHandler = Callable[[HotRequest], Awaitable[Response | None]]
"""Answers the request, or returns None (before doing anything) to leave it to FastAPI."""


@dataclass(frozen=True)
class HotRoute:
    method: str
    path: str  # the template of the FastAPI route it shortcuts, declared in the app as well
    handle: HotHandler
    json_body: bool = False  # reads a JSON body; otherwise a declared body goes to FastAPI


@dataclass(frozen=True)
class _Entry:
    hot: HotRoute
    pattern: re.Pattern[str]
    convertors: dict[str, Convertor[Any]]
    route: Any  # the APIRoute, as the router puts it in scope["route"]
    earlier: tuple[re.Pattern[str], ...]  # earlier routes of this method that match a path


class BufferedBody:
    """``body()`` for the authenticator: the body the lean path has read (empty for a route
    without one)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def body(self) -> bytes:
        return self._body


class HotRoutesMiddleware:
    """Innermost of the app's middleware: serves the routes in ``app.state.hot_routes``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._table: dict[str, list[_Entry]] | None = None  # by method, built at first use

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._table is None:
            self._table = _build_table(scope["app"])
        entries = self._table.get(scope["method"])
        if not entries or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        for entry in entries:
            match = entry.pattern.match(path)
            if match is not None:
                break
        else:
            await self.app(scope, receive, send)
            return
        if any(earlier.match(path) for earlier in entry.earlier):
            await self.app(scope, receive, send)
            return
        await self._serve(entry, match.groupdict(), scope, receive, send)

    async def _serve(
        self, entry: _Entry, raw_params: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        params = {name: entry.convertors[name].convert(value) for name, value in raw_params.items()}
        request = HotRequest(scope, params, _NO_BODY)
        if entry.hot.json_body:
            if not _is_plain_json(scope):
                await self.app(scope, receive, send)
                return
            try:
                body = await _read_body(receive)
            except StarletteHTTPException as exc:  # refused by the input limits: FastAPI's 4xx
                await self.app(scope, _raising(exc), send)
                return
            if body is None:  # the client left
                await self.app(scope, receive, send)
                return
            try:
                document = json.loads(body)  # as Starlette's Request.json() parses it
            except (ValueError, RecursionError):
                document = _UNPARSED
            if document is _UNPARSED:
                await self.app(scope, _replaying(body, receive), send)
                return
            request = HotRequest(scope, params, BufferedBody(body), document)
            receive = _replaying(body, receive)
        elif _declares_body(scope):
            await self.app(scope, receive, send)
            return
        # As the router does, for the access log and the metrics (RequestIdMiddleware); a
        # request left to FastAPI gets the same from the router.
        scope.update(route=entry.route, endpoint=entry.route.endpoint, path_params=params)
        try:
            response = await entry.hot.handle(request)
        except Exception as exc:
            response = error_response(exc)
            if response is None:
                raise  # RequestIdMiddleware logs it and answers 500, as for any route
        if response is None:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


_UNPARSED = object()
_NO_BODY = BufferedBody(b"")


def install_hot_routes(app: FastAPI, routes: Sequence[HotRoute]) -> None:
    """Give the app its hot routes (more may be appended to ``app.state.hot_routes`` until
    the first request) and the middleware that serves them. Call before any other
    ``add_middleware``: the lean path must be the innermost middleware."""
    setattr(app.state, HOT_ROUTES_STATE, list(routes))
    app.add_middleware(HotRoutesMiddleware)


def _build_table(app: Any) -> dict[str, list[_Entry]]:
    """Each hot route with its APIRoute, and the earlier routes the router would try first."""
    hot_routes: list[HotRoute] = getattr(app.state, HOT_ROUTES_STATE, [])
    contexts = list(iter_route_contexts(app.routes))
    table: dict[str, list[_Entry]] = {}
    for hot in hot_routes:
        earlier: list[re.Pattern[str]] = []
        for context in contexts:
            methods = getattr(context, "methods", None)
            path = getattr(context, "path", None)
            if methods is None or not isinstance(path, str):
                break  # a mount or an unknown kind of route: the lean path steps aside
            if path == hot.path and hot.method in methods:
                pattern, _format, convertors = compile_path(path)
                table.setdefault(hot.method, []).append(
                    _Entry(hot, pattern, convertors, context.original_route, tuple(earlier))
                )
                break
            if hot.method in methods:
                earlier.append(compile_path(path)[0])
        else:
            raise LookupError(f"no {hot.method} route {hot.path} declared for the hot route")
    return table


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            found: bytes = value
            return found
    return None


def _is_plain_json(scope: Scope) -> bool:
    """``Content-Type: application/json`` (with at most a UTF-8 charset), which FastAPI
    parses as JSON; any other type, or none, is FastAPI's to judge."""
    value = _header(scope, b"content-type")
    if value is None:
        return False
    media, _, parameter = value.lower().partition(b";")
    if media.strip() != b"application/json":
        return False
    return not parameter.strip() or parameter.replace(b" ", b"") == b"charset=utf-8"


def _declares_body(scope: Scope) -> bool:
    """As the authenticator decides whether to read a body."""
    length = _header(scope, b"content-length")
    chunked = _header(scope, b"transfer-encoding") is not None
    return chunked or (length is not None and length != b"0")


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body (the input limits bound it), or None if the client left meanwhile."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """``receive`` that gives the body already read, then what the server gives."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _raising(exc: Exception) -> Receive:
    """``receive`` that raises what reading the body raised, for FastAPI to answer it."""

    async def again() -> Message:
        raise exc

    return again
