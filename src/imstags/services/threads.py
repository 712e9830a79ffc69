"""Where a service's blocking reads run: the shared thread pool, off the event loop.

Writes go to the writer threads instead (:mod:`.writes`). Built on anyio, as Starlette's own
``run_in_threadpool`` is, so that services need nothing from the web framework.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio.to_thread

P = ParamSpec("P")
T = TypeVar("T")


async def run_blocking(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``work(*args, **kwargs)`` on the shared thread pool; the call sees the caller's
    context variables (anyio copies them)."""
    return await anyio.to_thread.run_sync(functools.partial(work, *args, **kwargs))
