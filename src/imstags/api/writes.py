"""Where the request handlers' write transactions run.

SQLite takes one writer at a time. Handed to the shared thread pool, concurrent writes of a
process became as many threads queueing on one lock, each woken in turn and competing for
the GIL with the event loop; on one thread of their own they queue in a plain FIFO and run back
to back, which measured about a fifth more tag writes a second under load. PostgreSQL runs
writers in parallel (each locks only its image and counter rows), so there they go to the
shared pool as before.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

from imstags.storage.database import Database

P = ParamSpec("P")
T = TypeVar("T")


class WriteRunner:
    def __init__(self, db: Database) -> None:
        self._own_thread = db.is_sqlite
        self._writer: ThreadPoolExecutor | None = None  # started on the first write
        self._lock = threading.Lock()

    async def run(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``work(*args, **kwargs)`` off the event loop, in the writer's thread or the pool."""
        if not self._own_thread:
            return await run_in_threadpool(work, *args, **kwargs)
        # As run_in_threadpool does: the call sees the request's context variables.
        call = functools.partial(contextvars.copy_context().run, work, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._thread(), call)

    def _thread(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="imstags-sqlite-writer"
                )
            return self._writer

    def close(self) -> None:
        """Let queued writes finish and stop the thread (at the app's shutdown)."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.shutdown(wait=True)
