"""Driver connections for plain write transactions, kept outside SQLAlchemy's pool.

Checking a connection out of SQLAlchemy's pool (events, weak-reference bookkeeping, and on
PostgreSQL a ping) cost more than the statements of a tag write. The tag write path takes
its connections from here instead: a stack of idle connections of the engine's own making
(so with its connect hooks, such as SQLite's PRAGMAs), handed out as they are. A connection
that failed, or was left inside a transaction, is closed rather than returned; one that
sat idle for a while is pinged before use, so that a PostgreSQL restart costs no request.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine

from imstags.errors import ServiceUnavailable

# Under load a connection is back in use within milliseconds; one idle for longer may have
# lost its server meanwhile.
PING_AFTER_IDLE_SECONDS = 1.0


class DriverConnections:
    def __init__(self, engine: Engine, *, keep: int, limit: int, timeout: float) -> None:
        """At most ``limit`` connections at a time (a caller waits ``timeout`` seconds for
        one, then gets a 503, as with the pool), of which ``keep`` are kept while idle."""
        self._engine = engine
        self._keep = keep
        self._timeout = timeout
        self._slots = threading.BoundedSemaphore(limit)
        self._idle: list[tuple[Any, float]] = []  # (connection, when it was put back)
        self._lock = threading.Lock()
        self._error: type[BaseException] = engine.dialect.loaded_dbapi.Error

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        """A connection with no transaction open; it must be left with none open."""
        if not self._slots.acquire(timeout=self._timeout):
            raise ServiceUnavailable("The database is busy; try again.")
        try:
            connection = self._take()
            try:
                yield connection
            finally:
                self._put_back(connection)
        finally:
            self._slots.release()

    def _take(self) -> Any:
        while True:
            with self._lock:
                connection, since = self._idle.pop() if self._idle else (None, 0.0)
            if connection is None:
                return self._connect()
            if time.monotonic() - since < PING_AFTER_IDLE_SECONDS or self._alive(connection):
                return connection
            self._close(connection)

    def _connect(self) -> Any:
        pooled = self._engine.raw_connection()  # runs the engine's connect hooks
        pooled.detach()
        return pooled.dbapi_connection

    def _alive(self, connection: Any) -> bool:
        try:
            if self._engine.dialect.name == "sqlite":  # a local file: open is enough
                return not connection.in_transaction  # raises once closed
            connection.execute("SELECT 1").fetchone()
            connection.rollback()
        except self._error:
            return False
        return True

    def _put_back(self, connection: Any) -> None:
        if self._is_reusable(connection):
            with self._lock:
                if len(self._idle) < self._keep:
                    self._idle.append((connection, time.monotonic()))
                    return
        self._close(connection)

    def _is_reusable(self, connection: Any) -> bool:
        """Open, not broken (psycopg marks a connection whose server went away), and outside
        any transaction, as the next user expects it."""
        try:
            if getattr(connection, "closed", False) or getattr(connection, "broken", False):
                return False
            info = getattr(connection, "info", None)  # psycopg
            if info is not None:
                from psycopg.pq import TransactionStatus

                return bool(info.transaction_status == TransactionStatus.IDLE)
            return not connection.in_transaction  # sqlite3
        except self._error:
            return False

    def _close(self, connection: Any) -> None:
        with contextlib.suppress(self._error):
            connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection, _ in idle:
            self._close(connection)
