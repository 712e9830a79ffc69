"""Where the services' write transactions run: threads of their own, off the event loop.

Not in the shared thread pool: there, sixteen concurrent writes became sixteen threads
competing for the GIL with the event loop (and on SQLite queueing on its one write lock, each
woken in turn). SQLite takes one writer at a time, so its writes run on one thread of their
own, back to back: about a fifth more tag writes a second under load. PostgreSQL runs writers
in parallel, but a write is mostly Python, so a few threads keep the round trips overlapped
without the contention: 2 threads gave ~890 writes/s where the shared pool gave ~560
(``write_threads``; benchmarks/run.py, one process, 2 cores shared with the database).

Tag writes on PostgreSQL need no thread at all: they are one statement, awaited on the event
loop (:meth:`WriteRunner.run_on_loop`), under the same deadline and counted in the same
metrics.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from imstags.errors import ImsError, ServiceUnavailable
from imstags.services import metrics
from imstags.storage.database import Database

P = ParamSpec("P")
T = TypeVar("T")


class WriteRunner:
    def __init__(self, db: Database, *, threads: int, deadline: float | None = None) -> None:
        self._threads = 1 if db.is_sqlite else threads
        self._deadline = deadline
        self._writer: ThreadPoolExecutor | None = None  # started on the first write
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Future[Any]] = set()  # writes awaited on the loop

    async def run(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``work(*args, **kwargs)`` off the event loop, on one of the writer threads."""
        # As run_in_threadpool does: the call sees the request's context variables.
        call = functools.partial(contextvars.copy_context().run, work, *args, **kwargs)
        metrics.WRITER_QUEUE.inc()
        try:
            if self._deadline is None:
                result = await asyncio.get_running_loop().run_in_executor(self._thread(), call)
            else:
                result = await self._within_deadline(call, self._deadline)
        except ImsError as exc:
            (metrics.WRITE_FAILED if exc.status >= 500 else metrics.WRITE_REFUSED).inc()
            raise
        except Exception:
            metrics.WRITE_FAILED.inc()
            raise
        finally:
            metrics.WRITER_QUEUE.dec()
        metrics.WRITE_COMMITTED.inc()
        return result

    async def _within_deadline(self, call: Callable[[], T], deadline: float) -> T:
        """The write's outcome, or 503 once ``deadline`` has passed (issue 11, item 14).

        A frozen database answers nothing and no server-side timeout fires, so the writer
        threads could hang and every write queue behind them without end. A write still
        queued at the deadline is dropped unrun (nothing written); one that had started is
        left to its transaction, which commits whole or not at all, like a write whose
        client went away.
        """
        expired = threading.Event()

        def unless_expired() -> T:
            if expired.is_set():
                raise ServiceUnavailable("The database did not answer in time; try again.")
            return call()

        future = asyncio.get_running_loop().run_in_executor(self._thread(), unless_expired)
        try:
            return await asyncio.wait_for(asyncio.shield(future), deadline)
        except TimeoutError:
            expired.set()
            future.add_done_callback(_ignore_outcome)
            raise ServiceUnavailable("The database did not answer in time; try again.") from None
        except asyncio.CancelledError:  # the client went away: the write goes on regardless
            future.add_done_callback(_ignore_outcome)
            raise

    async def run_on_loop(
        self, work: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """An awaitable write (one that needs no thread: PostgreSQL's one-statement tag
        change), with the deadline and the metrics of :meth:`run`.

        At the deadline the write is cancelled and the request gets a 503: one still waiting
        for a connection is dropped unrun; one whose statement was sent is cancelled on the
        server or completes, whole either way. A client that goes away does not cancel it.
        """
        metrics.WRITER_QUEUE.inc()
        try:
            task = asyncio.ensure_future(work(*args, **kwargs))
            self._tasks.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._tasks.discard)
            try:
                result = await asyncio.wait_for(asyncio.shield(task), self._deadline)
            except TimeoutError:
                task.cancel()
                task.add_done_callback(_ignore_outcome)
                raise ServiceUnavailable(
                    "The database did not answer in time; try again."
                ) from None
            except asyncio.CancelledError:  # the client went away: the write goes on
                task.add_done_callback(_ignore_outcome)
                raise
        except ImsError as exc:
            (metrics.WRITE_FAILED if exc.status >= 500 else metrics.WRITE_REFUSED).inc()
            raise
        except Exception:
            metrics.WRITE_FAILED.inc()
            raise
        finally:
            metrics.WRITER_QUEUE.dec()
        metrics.WRITE_COMMITTED.inc()
        return result

    def _thread(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(
                    max_workers=self._threads, thread_name_prefix="imstags-writer"
                )
            return self._writer

    def close(self) -> None:
        """Let queued writes finish and stop the threads (at the app's shutdown)."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.shutdown(wait=True)


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    """Retrieve a late write's outcome, which nobody awaits any more (no "never retrieved")."""
    if not future.cancelled():
        future.exception()
