"""The fault injection middleware: applies :mod:`imstags.services.faults` rules to requests.

Installed only when the admin API or a fault file is configured, so that a server without
them pays nothing. Without any rule, a request costs one attribute check. With rules, the
route is resolved here (as the router will) to learn its template, the reference's operation
name (the route's summary), the handler's name and the ``project_id`` path parameter (else the
``X-Project-Id`` header that the IMS SDK sends). The body is read only when a rule that matches
otherwise names a tag key.

A fired rule acts before the handler runs: a delay (then the request goes on, unless the rule
also fails it), an error response ``{"error": {"code", "message"}}`` with the rule's status and
code, or a dropped connection: the response head goes out and the connection closes before the
body, which clients report as a broken connection (an ASGI app cannot close the socket before
the head). A status rule (``hold`` or ``kill``) is left in the scope for the upload's handler,
which passes it to its service (:func:`status_fault`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imstags.api.openapi import api_routes
from imstags.api.responses import JsonResponse, error_body
from imstags.services.faults import FaultBook, RequestFacts, StatusFault, log_fired

STATUS_FAULT_SCOPE_KEY = "imstags.status_fault"


def status_fault(scope: Scope) -> StatusFault | None:
    """The status rule that fired for this upload, if one did."""
    fault = scope.get(STATUS_FAULT_SCOPE_KEY)
    return fault if isinstance(fault, StatusFault) else None


class FaultInjectionMiddleware:
    def __init__(self, app: ASGIApp, *, book: FaultBook) -> None:
        self.app = app
        self.book = book
        self._table: list[_Route] | None = None  # built at the first request with rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.book.active:
            await self.app(scope, receive, send)
            return
        if self._table is None:
            self._table = _route_table(scope["app"])
        route, params = _resolve(self._table, scope)
        if route is None or route.path.startswith("/_imstags"):
            await self.app(scope, receive, send)  # unknown paths and the admin API itself
            return
        facts = RequestFacts(
            method=scope["method"],
            operations=route.operations,
            project=params.get("project_id") or _header(scope, b"x-project-id"),
        )
        candidates = self.book.candidates(facts)
        if not candidates:
            await self.app(scope, receive, send)
            return
        tag_keys = None
        if any(rule.tag_key is not None for rule in candidates):
            body, receive = await _buffered(receive)
            tag_keys = frozenset(_tag_keys(params, body))
        rule = self.book.draw(candidates, tag_keys)
        if rule is None:
            await self.app(scope, receive, send)
            return
        log_fired(rule, facts.method, route.path, scope.get("imstags.request_id"))
        if rule.delay:
            await asyncio.sleep(rule.delay)
        if rule.drop:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", b"2")]})  # fmt: skip
            return  # the server closes a connection whose response was left unfinished
        if rule.status_fault is not None:  # the upload's service applies it
            scope[STATUS_FAULT_SCOPE_KEY] = rule.status_fault
        if rule.status is not None:
            response = JsonResponse(error_body(rule.code, rule.message), status_code=rule.status)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class _Route:
    path: str
    methods: frozenset[str]
    operations: tuple[str, ...]  # the reference's operation name, the handler, the template
    pattern: re.Pattern[str]


def _route_table(app: Any) -> list[_Route]:
    """The app's routes in the router's order, each with what a rule may name it by."""
    table = []
    for context in api_routes(app):
        route = context.original_route
        path = context.path or route.path
        names = (route.summary, route.name, path)
        table.append(
            _Route(
                path=path,
                methods=frozenset(route.methods or ()),
                operations=tuple(name for name in names if name),
                pattern=compile_path(path)[0],
            )
        )
    return table


def _resolve(table: list[_Route], scope: Scope) -> tuple[_Route | None, dict[str, str]]:
    """The route the router will choose (the first whose path and method match)."""
    path, method = scope["path"], scope["method"]
    for route in table:
        match = route.pattern.match(path)
        if match and (method in route.methods or (method == "HEAD" and "GET" in route.methods)):
            return route, match.groupdict()
    return None, {}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole body (InputLimitsMiddleware bounds it) and a receive that replays it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _tag_keys(params: dict[str, Any], body: bytes) -> Iterator[str]:
    """Tag keys the request names: in its path (IMS ``{key}``, native ``{tag}`` as k=v) or its
    JSON body (``{"key": ...}`` objects, native tag strings in a ``tags`` list)."""
    if isinstance(params.get("key"), str):
        yield params["key"]
    if isinstance(params.get("tag"), str):
        yield params["tag"].split("=", 1)[0]
    try:
        document = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("key"), str):
                yield item["key"]
            for name, value in item.items():
                if name == "tags" and isinstance(value, list):
                    yield from (t.split("=", 1)[0] for t in value if isinstance(t, str))
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
