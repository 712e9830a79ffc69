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

    Lookups of the same key that wait at the same time share one query (a query's CPU in the
    driver is a large part of the request). A lookup only ever joins a query that has not
    started yet, so the answer it gets was read after it arrived: it sees every write
    committed before it, as a query of its own would.

    Why a second driver: this is asyncpg, not the psycopg of the rest of the service. On a
    point read it costs about half the client CPU (36 against 74 us a query on uvloop), which
    raised the core endpoint's throughput on PostgreSQL from 0.61 to 0.66 of the floor
    (docs/performance.md). It serves every read awaited on the event loop, all of which go
    through ``Database.lookup``; sessions, transactions and writes stay on psycopg.
    """

    def __init__(self, conninfo: str, *, timeout: float = 5.0) -> None:
        self._conninfo = conninfo
        self._timeout = timeout
        self._connection: Any = None
        self._turn: asyncio.Lock | None = None  # one query at a time on the connection
        self._statements: dict[tuple[str, str, str], str] = {}
        self._next: dict[tuple[str, object], asyncio.Future[Any]] = {}  # not started yet
        self._tasks: set[asyncio.Future[Any]] = set()

    async def lookup(self, table: str, column: str, key_column: str, key: object) -> Any:
        statement = self._statements.get((table, column, key_column))
        if statement is None:
            # Names come from code (TAG_VERSION), never from a request; the key is bound.
            statement = f"SELECT {column} FROM {table} WHERE {key_column} = $1"  # noqa: S608
            self._statements[table, column, key_column] = statement
        shared = self._next.get((statement, key))
        if shared is None:
            shared = asyncio.get_running_loop().create_future()
            self._next[statement, key] = shared
            task = asyncio.ensure_future(self._run(statement, key, shared))
            self._tasks.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._tasks.discard)
        try:
            async with asyncio.timeout(self._timeout):
                return await asyncio.shield(shared)
        except (ServiceUnavailable, TimeoutError) as exc:  # a fresh error for each waiter
            raise ServiceUnavailable("The database is unavailable.") from exc

    async def _run(self, statement: str, key: object, shared: asyncio.Future[Any]) -> None:
        if self._turn is None:
            self._turn = asyncio.Lock()
        try:
            async with asyncio.timeout(self._timeout), self._turn:
                # From here on, later lookups start a query of their own.
                if self._next.get((statement, key)) is shared:
                    del self._next[statement, key]
                for attempt in (1, 2):
                    try:
                        connection = await self._connect()
                        shared.set_result(await connection.fetchval(statement, key))
                        return
                    except _CONNECTION_ERRORS:
                        await self._discard()
                        if attempt == 2:
                            raise
        except _LOOKUP_FAILURES as exc:
            await self._discard()
            log.warning("database unavailable: %r", exc)
            if not shared.done():
                shared.set_exception(ServiceUnavailable("The database is unavailable."))
        finally:
            if self._next.get((statement, key)) is shared:
                del self._next[statement, key]
            if not shared.done():
                shared.set_exception(ServiceUnavailable("The database is unavailable."))

    async def _connect(self) -> Any:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(self._conninfo, timeout=self._timeout)
        return self._connection

    async def _discard(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    async def aclose(self) -> None:
        """Close the connection, on the event loop it belongs to (at the app's shutdown); a
        later lookup, on any loop, opens a new one."""
        await self._discard()
        self._turn = None
