"""One-value lookups by primary key, outside any session: the hot path's read.

The core endpoint reads one number per request (the project's tag version, :data:`TAG_VERSION`).
Checking a connection out of the pool and running it through an ORM session costs many times
the lookup itself, so these readers keep plain driver connections of their own, outside the
pool, in autocommit mode: every statement sees everything committed before it started, by this
process or any other, which is what keeps several processes on one database correct.

This is the one way async code reads the database: ``Database.lookup`` is its only door and
picks the reader, :class:`PointReader` on SQLite (on the event loop itself: a local file
answers in microseconds) and :class:`AsyncPointReader` on PostgreSQL (awaited, never blocking
the loop). Everything else reads through sessions on the thread pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any, NamedTuple

import asyncpg
from sqlalchemy import Engine

from imstags.errors import ServiceUnavailable
from imstags.storage.models import TagVersion

log = logging.getLogger(__name__)


class PointRead(NamedTuple):
    """What ``Database.lookup`` reads: ``column`` of the ``table`` row whose ``key_column``
    (its primary key) equals the key given."""

    table: str
    column: str
    key_column: str


TAG_VERSION = PointRead(TagVersion.__tablename__, "version", "project_id")


class PointReader:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._error: type[BaseException] = engine.dialect.loaded_dbapi.Error
        self._local = threading.local()
        self._statements: dict[tuple[str, str, str], str] = {}
        self._open: list[Any] = []
        self._lock = threading.Lock()

    def lookup(self, table: str, column: str, key_column: str, key: object) -> Any:
        """``SELECT column FROM table WHERE key_column = key``: the value, or None.

        Names come from code, never from requests. A broken connection is replaced once;
        if the database still does not answer, the request gets a 503.
        """
        statement = self._statements.get((table, column, key_column))
        if statement is None:
            # Names come from code (TAG_VERSION), never from a request; the key is bound.
            statement = f"SELECT {column} FROM {table} WHERE {key_column} = {self._marker}"  # noqa: S608
            self._statements[table, column, key_column] = statement
        for attempt in (1, 2):
            cursor = getattr(self._local, "cursor", None)
            try:
                if cursor is None:
                    cursor = self._connect()
                cursor.execute(statement, (key,))
                row = cursor.fetchone()
                return None if row is None else row[0]
            except self._error as exc:
                self._discard()
                if attempt == 2:
                    log.warning("database unavailable: %s", exc)
                    raise ServiceUnavailable("The database is unavailable.") from exc
        raise AssertionError("unreachable")

    def _connect(self) -> Any:
        pooled = self._engine.raw_connection()  # runs the engine's connect hooks (PRAGMAs)
        pooled.detach()
        connection: Any = pooled.dbapi_connection
        if self._engine.dialect.name != "sqlite":  # SQLite's connections already autocommit
            connection.rollback()
            connection.autocommit = True
        cursor = connection.cursor()
        self._local.connection, self._local.cursor = connection, cursor
        with self._lock:
            self._open.append(connection)
        return cursor

    def _discard(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = self._local.cursor = None
        if connection is None:
            return
        with self._lock:
            if connection in self._open:
                self._open.remove(connection)
        with contextlib.suppress(self._error):
            connection.close()

    def close(self) -> None:
        with self._lock:
            connections, self._open = self._open, []
        for connection in connections:
            with contextlib.suppress(self._error):
                connection.close()


# What a lost or refused connection raises in asyncpg.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
)
_LOOKUP_FAILURES: tuple[type[BaseException], ...] = (*_CONNECTION_ERRORS, TimeoutError)


class AsyncPointReader:
    """The same lookup for PostgreSQL, on one asyncio connection per process.

    A network database must not be waited for on the event loop's thread: a database that
    stops answering would freeze every request of the process. This connection is awaited
    instead, and every lookup is bounded by ``timeout`` (then 503), so a lost database costs
    the requests that need it, never the process.

    Lookups that wait at the same time share one query: those of one key share its row, those
    of several keys (several projects) one ``= ANY($1)`` statement. A lookup only ever joins a
    query that has not started yet, so the answer it gets was read after it arrived: it sees
    every write committed before it, as a query of its own would. Under load this is what
    keeps the database's share of the two cores small; one connection's requests are answered
    one query each.

    The bookkeeping is kept to the least the event loop allows, because on the core endpoint
    it is a large part of the request: each lookup is one future of its own (a client that
    goes away cancels only its own), one long-lived task sends the waiting lookups (woken by
    the first of each batch), one timer bounds each batch, and the statements are prepared
    once per connection. Against the first version of this reader (a task, a lock, a shield
    and a timeout per lookup, statements looked up by text) a sequential lookup went from 3.2
    to about 2 times the client CPU of a bare prepared asyncpg query (``fetchval``), and 16
    concurrent lookups of one key cost 4-6 us each.

    Why a second driver: this is asyncpg, not the psycopg of the rest of the service. On a
    point read it costs about half the client CPU (36 against 74 us a query on uvloop), which
    raised the core endpoint's throughput on PostgreSQL from 0.61 to 0.66 of the floor
    (docs/performance.md). It serves every read awaited on the event loop, all of which go
    through ``Database.lookup``; sessions, transactions and writes stay on psycopg.
    """

    def __init__(self, conninfo: str, *, timeout: float = 5.0) -> None:
        self._conninfo = conninfo
        self._timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection: Any = None
        self._prepared: dict[str, Any] = {}  # statement -> asyncpg statement, this connection's
        self._batch: _Batch | None = None  # lookups not yet sent
        self._draining: asyncio.Task[None] | None = None  # the one task that sends them
        self._idle: asyncio.Future[None] | None = None  # set while that task sleeps

    async def lookup(self, table: str, column: str, key_column: str, key: object) -> Any:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests, a restarted app): start afresh
            self._restart(loop)
        batch = self._batch
        if batch is None:
            batch = self._batch = _Batch(loop, self._timeout)
        waiter = batch.add(PointRead(table, column, key_column), key)
        idle = self._idle
        if idle is not None:  # the drainer sleeps: wake it (cheaper than a task a lookup)
            self._idle = None
            idle.set_result(None)
        elif self._draining is None:
            self._draining = loop.create_task(self._drain(loop))
        return await waiter

    async def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """Send the waiting lookups, batch after batch; sleep while none waits."""
        try:
            while True:
                if self._batch is None:
                    self._idle = loop.create_future()
                    await self._idle
                    continue
                batch, self._batch = self._batch, None
                try:
                    await self._answer(batch)
                except _LOOKUP_FAILURES as exc:
                    await self._discard()
                    log.warning("database unavailable: %r", exc)
                    batch.fail()
                except Exception:  # a bug, not the database: its waiters get a 503 too
                    await self._discard()
                    log.exception("point read failed")
                    batch.fail()
                finally:
                    batch.done()
        finally:
            # Only cancellation ends this task: aclose, or the event loop shutting down
            # (asyncio.run cancels what is left). Cut the connection while the loop still runs,
            # so that its socket is closed, not left to a loop that is gone.
            self._draining = self._idle = None
            connection, self._connection = self._connection, None
            self._prepared = {}
            if connection is not None:
                connection.terminate()

    async def _answer(self, batch: _Batch) -> None:
        for read, waiters in batch.by_read.items():
            if len(waiters) == 1:
                ((key, futures),) = waiters.items()
                value = await self._fetch(_one_statement(read), key, single=True)
                _resolve(futures, value)
                continue
            found = dict(await self._fetch(_many_statement(read), list(waiters), single=False))
            for key, futures in waiters.items():
                _resolve(futures, found.get(key))

    async def _fetch(self, statement: str, argument: object, *, single: bool) -> Any:
        """The statement's value (``single``) or rows, reconnecting once on a lost connection."""
        for attempt in (1, 2):
            try:
                connection = await self._connect()
                prepared = self._prepared.get(statement)
                if prepared is None:
                    prepared = await connection.prepare(statement, timeout=self._timeout)
                    self._prepared[statement] = prepared
                if single:
                    return await prepared.fetchval(argument, timeout=self._timeout)
                return await prepared.fetch(argument, timeout=self._timeout)
            except _CONNECTION_ERRORS:
                await self._discard()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _connect(self) -> Any:
        if self._connection is None or self._connection.is_closed():
            self._prepared = {}
            self._connection = await asyncpg.connect(self._conninfo, timeout=self._timeout)
        return self._connection

    async def _discard(self) -> None:
        connection, self._connection = self._connection, None
        self._prepared = {}
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    def _restart(self, loop: asyncio.AbstractEventLoop) -> None:
        """Forget what belonged to another event loop (its connection cannot be used here)."""
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.terminate()
        self._loop, self._connection, self._prepared = loop, None, {}
        self._batch, self._draining, self._idle = None, None, None

    async def aclose(self) -> None:
        """Close the connection, on the event loop it belongs to (at the app's shutdown); a
        later lookup, on any loop, opens a new one."""
        if self._draining is not None:
            self._draining.cancel()
            with contextlib.suppress(BaseException):
                await self._draining
        if self._batch is not None:
            self._batch.fail()
            self._batch.done()
        await self._discard()
        self._loop, self._batch, self._draining, self._idle = None, None, None, None


def _one_statement(read: PointRead) -> str:
    # Names come from code (TAG_VERSION), never from a request; the key is bound.
    return f"SELECT {read.column} FROM {read.table} WHERE {read.key_column} = $1"  # noqa: S608


def _many_statement(read: PointRead) -> str:
    return (
        f"SELECT {read.key_column}, {read.column} FROM {read.table}"  # noqa: S608 (names from code)
        f" WHERE {read.key_column} = ANY($1)"
    )


def _resolve(futures: list[asyncio.Future[Any]], value: object) -> None:
    for future in futures:
        if not future.done():  # a waiter whose client went away cancelled its own
            future.set_result(value)


class _Batch:
    """The lookups that arrived while no query of theirs had started, and the one timer that
    answers them 503 if the database has not answered within the timeout."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self.by_read: dict[PointRead, dict[object, list[asyncio.Future[Any]]]] = {}
        self._timer = loop.call_later(timeout, self.fail)

    def add(self, read: PointRead, key: object) -> asyncio.Future[Any]:
        waiter = self._loop.create_future()
        self.by_read.setdefault(read, {}).setdefault(key, []).append(waiter)
        return waiter

    def fail(self) -> None:
        for waiters in self.by_read.values():
            for futures in waiters.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(ServiceUnavailable("The database is unavailable."))

    def done(self) -> None:
        self._timer.cancel()
