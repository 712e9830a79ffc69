"""Connection limits below the ASGI app: a deadline for request heads, a cap on connections.

uvicorn times out only idle keep-alive connections, and its idle timer is cancelled by the
first byte of the next request, so a client that sends half a request head and then one byte
now and then holds a connection (a descriptor, a parser, a buffer) for as long as it likes:
1,000 such connections were held for 45 s, and with a low descriptor limit the server stopped
answering (issue 11, item 16). Nothing in the ASGI app can help, since it is called only once
a head is complete. So the HTTP protocol itself is wrapped here:

- **head deadline**: a connection must complete a request head within ``head_timeout``
  seconds of opening, or of the previous response's end; otherwise it is closed. Slow
  responses and bodies are not cut: once a head is complete, the request is the app's.
- **connection cap**: beyond ``max_connections`` open connections in this process, a new one
  is closed as soon as it is accepted, so its descriptor is freed at once. uvicorn's own
  ``limit_concurrency`` answers 503 to every request once that many connections are open, the
  established clients' included, which would let idle connections refuse real work.

``imstags serve`` passes :func:`protocol` (a picklable partial, for ``--workers``) to uvicorn.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)


class _HeadDeadline:
    """Mixed into one of uvicorn's HTTP protocols (both keep ``cycle``: the current request,
    set when its head is complete, with ``response_complete``)."""

    transport: asyncio.Transport
    connections: set[Any]
    cycle: Any
    loop: asyncio.AbstractEventLoop

    def __init__(self, *args: Any, head_timeout: float, max_connections: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._head_timeout = head_timeout
        self._max_connections = max_connections
        self._head_timer: asyncio.TimerHandle | None = None
        self._cycle_when_armed: Any = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]  # the protocol's, by the MRO
        if len(self.connections) > self._max_connections:
            log.warning("connection refused: %d connections open", len(self.connections) - 1)
            transport.abort()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)  # type: ignore[misc]  # the protocol's, by the MRO

    def _arm(self) -> None:
        self._cycle_when_armed = self.cycle
        self._head_timer = self.loop.call_later(self._head_timeout, self._check_head)

    def _check_head(self) -> None:
        """Close the connection if no request head was completed since the timer was armed
        and no request is being answered; otherwise look again one period later (so a head
        that follows a response gets between one and two periods)."""
        self._head_timer = None
        if self.transport.is_closing():
            return
        answering = self.cycle is not None and not self.cycle.response_complete
        if not answering and self.cycle is self._cycle_when_armed:
            log.info("connection closed: no complete request head in %ss", self._head_timeout)
            self.transport.close()
            return
        self._arm()


# The ignores below: uvicorn's protocols type connection_made with a narrower transport.
class HeadDeadlineHttpTools(_HeadDeadline, HttpToolsProtocol):  # type: ignore[misc]
    pass


class HeadDeadlineH11(_HeadDeadline, H11Protocol):  # type: ignore[misc]  # as above
    pass


def protocol(http: str, *, head_timeout: float, max_connections: int) -> Any:
    """uvicorn's ``http`` option: its ``http`` implementation ("auto", "httptools", "h11")
    with the head deadline and the connection cap."""
    base = HeadDeadlineH11 if http == "h11" else HeadDeadlineHttpTools
    return functools.partial(base, head_timeout=head_timeout, max_connections=max_connections)
