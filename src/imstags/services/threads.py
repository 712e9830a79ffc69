"""Where a service's blocking reads run: the one way off the event loop besides the writers.

A read through a session blocks (the driver waits for the database), so an ``async`` service
method hands it to the shared thread pool with :func:`run_blocking`; writes go to the writer
threads of :mod:`.writes` instead. Only the hot path's one-value lookups stay on the event loop
(``Database.lookup``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

P = ParamSpec("P")
T = TypeVar("T")


async def run_blocking(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``work(*args, **kwargs)`` on the shared thread pool, seeing the caller's context
    variables (the request id of the log lines)."""
    return await run_in_threadpool(work, *args, **kwargs)
