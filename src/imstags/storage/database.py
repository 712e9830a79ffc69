"""Engines, sessions and transactions for SQLite and PostgreSQL.

Writers must not interleave on the same image (the 10-tag limit and the aggregate depend on
it). On SQLite every write transaction starts with ``BEGIN IMMEDIATE``, which takes the
database's single write lock up front instead of failing with "database is locked" on the
first write; readers use plain deferred transactions and, in WAL mode, never wait for writers.
On PostgreSQL the service locks the image row (``SELECT ... FOR UPDATE``) and updates shared
counter rows in one global order, and a transaction that still loses a deadlock or a
serialisation race is retried whole.

Every wait on the database is bounded (issue 11, item 14): a lock held by another transaction
is waited for at most ``lock_timeout`` seconds (PostgreSQL's ``lock_timeout``; SQLite's busy
handler, and this process's own queue for SQLite's write lock), a statement runs at most
``statement_timeout`` seconds on PostgreSQL; both end in a 503 (``storage/errors.py``). A
database that is frozen rather than slow answers nothing at all, and no server-side limit can
fire: the services put a deadline of their own on the event loop's wait (``WriteRunner``,
``HealthService``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from imstags.errors import ServiceUnavailable
from imstags.storage.driver_connections import DriverConnections
from imstags.storage.point_reads import AsyncPointReader, PointReader
from imstags.storage.tag_change_pg import PgTagChanger, TagChangeOutcome
from imstags.storage.tag_rows import TagRows

log = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Bounds on waiting for a PostgreSQL that went away (tests/test_database_faults.py): 5 s to
# connect; on a connection whose peer vanished without a reset (a network partition), data
# unacknowledged for 15 s or an idle wait with 3 unanswered keepalives fails the request (503)
# instead of hanging for the kernel's default of many minutes.
PG_CONNECT_ARGS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
}
_RETRYABLE_PG_STATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected


def normalise_url(url: str) -> str:
    """Let users write ``postgresql://`` and still get psycopg 3 rather than psycopg2."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def url_for_display(url: str) -> str:
    """The URL with its password masked, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_engine(
    url: str, *, immediate: bool, pool: dict[str, Any], busy_timeout_ms: int
) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        **({"poolclass": NullPool} if ":memory:" in url else pool),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so that BEGIN is ours to issue.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """The one handle the service layer gets: ``read()`` and ``write()`` sessions."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        pool_timeout: float = 5.0,
        lock_timeout: float | None = None,
        statement_timeout: float | None = None,
        write_connections: int = 4,
    ) -> None:
        """``lock_timeout`` and ``statement_timeout`` (seconds) bound the server's waits; the
        defaults (None) keep SQLite's 10 s busy wait and no PostgreSQL limit, for the CLI's
        long-running commands (bulk import, consistency check). ``write_connections`` is the
        size of PostgreSQL's pool for tag changes (:meth:`change_tags`)."""
        self.url = normalise_url(url)
        self.dialect = self.url.split(":", 1)[0].split("+", 1)[0]
        # A request that waits longer than pool_timeout for a connection gets a 503.
        pool: dict[str, Any] = {
            "pool_size": pool_size,
            "max_overflow": pool_size,
            "pool_timeout": pool_timeout,
        }
        busy_ms = SQLITE_BUSY_TIMEOUT_MS if lock_timeout is None else int(lock_timeout * 1000)
        if self.dialect == "sqlite":
            self._read_engine = _sqlite_engine(
                self.url, immediate=False, pool=pool, busy_timeout_ms=busy_ms
            )
            self._write_engine = _sqlite_engine(
                self.url, immediate=True, pool=pool, busy_timeout_ms=busy_ms
            )
        else:
            connect_args: dict[str, Any] = dict(PG_CONNECT_ARGS)
            connect_args.update(_pg_limits(lock_timeout, statement_timeout))
            self._read_engine = create_engine(
                self.url, pool_pre_ping=True, connect_args=connect_args, **pool
            )
            self._write_engine = self._read_engine
        self._reader = sessionmaker(self._read_engine, expire_on_commit=False)
        self._point_reads = PointReader(self._read_engine)
        self._async_point_reads = (
            None
            if self.dialect == "sqlite"
            else AsyncPointReader(
                self._read_engine.url.set(drivername="postgresql").render_as_string(
                    hide_password=False
                )
            )
        )
        self._tag_changer = (
            None
            if self.dialect == "sqlite"
            else PgTagChanger(
                self._read_engine.url.set(drivername="postgresql").render_as_string(
                    hide_password=False
                ),
                connections=write_connections,
                lock_timeout=lock_timeout,
                statement_timeout=statement_timeout,
            )
        )
        if self._tag_changer is not None:
            self._tag_changer.on_retry = self._retried
        self._writer = sessionmaker(self._write_engine, expire_on_commit=False)
        self._driver_errors: Any = self._write_engine.dialect.loaded_dbapi
        self._tag_writers = DriverConnections(
            self._write_engine, keep=pool_size, limit=2 * pool_size, timeout=pool_timeout
        )
        # SQLite has one write lock per database. Threads of this process queue for it here, in
        # order, instead of inside SQLite, whose busy handler polls with sleeps of up to 100 ms
        # and so left the lock idle most of the time under concurrent writes. Other processes
        # on the same file still meet the busy handler.
        self._one_writer: AbstractContextManager[Any] = (
            _WriterQueue(busy_ms / 1000) if self.dialect == "sqlite" else nullcontext()
        )
        # Called once per transaction run again after a lost race (the retry counter).
        self.on_retry: Callable[[], object] = _nothing

    @property
    def pooled_engines(self) -> tuple[Engine, ...]:
        """The engines whose SQLAlchemy pools sessions draw from (one on PostgreSQL)."""
        return tuple({id(e): e for e in (self._read_engine, self._write_engine)}.values())

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def engine(self) -> Engine:
        return self._write_engine

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read snapshot, ended (rolled back) when the block exits.

        Closing rather than rolling back the session leaves loaded objects usable after the
        block (detached, not expired), so handlers can render what they read.
        """
        with _unavailable_on_connection_loss(), self._reader() as session:
            yield session

    async def lookup(self, table: str, column: str, key_column: str, key: object) -> Any:
        """One value by primary key, outside any session: for the hot read path only.

        SQLite answers from a local file in microseconds, so it is read right on the event
        loop; PostgreSQL is awaited on an asyncio connection with a bounded wait.
        """
        if self._async_point_reads is None:
            return self._point_reads.lookup(table, column, key_column, key)
        return await self._async_point_reads.lookup(table, column, key_column, key)

    async def close_async(self) -> None:
        """Close what belongs to the event loop (PostgreSQL's asyncio connections)."""
        if self._async_point_reads is not None:
            await self._async_point_reads.aclose()
        if self._tag_changer is not None:
            await self._tag_changer.aclose()

    @property
    def changes_tags_in_one_statement(self) -> bool:
        """Whether :meth:`change_tags` is there (PostgreSQL); else tag writes go through
        :meth:`write_tags`."""
        return self._tag_changer is not None

    async def change_tags(
        self,
        project_id: str,
        image_id: str,
        *,
        upserts: Mapping[str, str],
        removals: Sequence[tuple[str, str | None]],
        required: tuple[str, str | None] | None,
        max_tags: int,
    ) -> TagChangeOutcome:
        """One image's tag change as one statement, awaited on the event loop (PostgreSQL
        only; :mod:`.tag_change_pg`): the work of a :meth:`write_tags` transaction in one round
        trip, with the same guarantees (retried after a lost race, a 503 when the database is
        out of reach, durable once answered)."""
        if self._tag_changer is None:
            raise RuntimeError("change_tags needs PostgreSQL; use write_tags")
        return await self._tag_changer.change(
            project_id,
            image_id,
            upserts=upserts,
            removals=removals,
            required=required,
            max_tags=max_tags,
        )

    def _retried(self) -> object:
        return self.on_retry()

    def write(self, work: Callable[[Session], T], *, attempts: int = 5) -> T:
        """Run ``work`` in one write transaction and commit it, retrying lost races whole.

        ``work`` must be safe to run again: it is called afresh on every attempt. Its tag
        statements run on the session's driver connection (``TagRows.of``), so a race lost
        there arrives as the driver's own error rather than SQLAlchemy's, and is retried too.
        """

        def attempt() -> T:
            with (
                self._one_writer,
                _unavailable_on_connection_loss(),
                self._writer() as session,
                session.begin(),
            ):
                return work(session)

        return self._retrying(attempt, attempts)

    def write_tags(self, work: Callable[[TagRows], T], *, attempts: int = 5) -> T:
        """:meth:`write` for the tag write path: the transaction runs on a bare driver
        connection, without an ORM session or SQLAlchemy's pool, whose overhead alone cost
        more than a tag write's statements. The same guarantees: one transaction, lost races
        retried whole, a database out of reach a 503."""

        def attempt() -> T:
            with self._one_writer, _unavailable_on_connection_loss():
                return self._plain_transaction(work)

        return self._retrying(attempt, attempts)

    def _retrying(self, attempt: Callable[[], T], attempts: int) -> T:
        """Run a transaction until it does not lose a race (deadlock, serialisation failure,
        SQLite busy), at most ``attempts`` times; errors come from SQLAlchemy or the driver."""
        for number in range(1, attempts + 1):
            try:
                return attempt()
            except (DBAPIError, self._driver_errors.Error) as exc:
                driver_error = exc.orig if isinstance(exc, DBAPIError) else exc
                if (
                    number < attempts
                    and driver_error is not None
                    and self._is_retryable_driver_error(driver_error)
                ):
                    log.info("retrying transaction after %s (attempt %d)", driver_error, number)
                    self.on_retry()
                    time.sleep(0.005 * number)
                    continue
                if not isinstance(exc, DBAPIError) and self._lost_connection(exc):
                    log.warning("database unavailable: %s", exc)
                    raise ServiceUnavailable("The database is unavailable.") from exc
                raise
        raise AssertionError("unreachable")

    def _lost_connection(self, exc: BaseException) -> bool:
        """A driver error that means the server is out of reach (PostgreSQL only)."""
        return not self.is_sqlite and isinstance(exc, self._driver_errors.OperationalError)

    def _is_retryable_driver_error(self, exc: BaseException) -> bool:
        if self.is_sqlite:
            return isinstance(exc, self._driver_errors.OperationalError) and "locked" in str(exc)
        return getattr(exc, "sqlstate", None) in _RETRYABLE_PG_STATES

    def _plain_transaction(self, work: Callable[[TagRows], T]) -> T:
        """One attempt; a failed connection is closed by the stack, not reused."""
        with self._tag_writers.connection() as driver:
            if self.is_sqlite:  # the connection is in autocommit mode: BEGIN is ours
                driver.execute("BEGIN IMMEDIATE")
            try:
                result = work(TagRows(driver, postgres=not self.is_sqlite))
                if self.is_sqlite:
                    driver.execute("COMMIT")
                else:
                    driver.commit()
            except BaseException:
                with contextlib.suppress(self._driver_errors.Error):
                    if self.is_sqlite:
                        driver.execute("ROLLBACK")
                    else:
                        driver.rollback()
                raise
            return result

    def refresh_statistics(self) -> None:
        """Let the query planner see the tables as they are now (after a bulk load).

        Without statistics, PostgreSQL guessed a list of a hundred image ids in ``image_tags``
        to match half the table and scanned all ten million rows instead of using the primary
        key. SQLite samples at most ``analysis_limit`` rows per index, so this takes seconds
        even at millions of rows.
        """
        with self._writer() as session, session.begin():
            if self.is_sqlite:
                session.execute(text("PRAGMA analysis_limit=1000"))
                session.execute(text("ANALYZE"))
            else:
                session.execute(text("ANALYZE images, image_tags, tag_counts"))

    def dispose(self) -> None:
        self._point_reads.close()
        self._tag_writers.close()
        self._read_engine.dispose()
        if self._write_engine is not self._read_engine:
            self._write_engine.dispose()


def _nothing() -> None:
    return None


def _pg_limits(lock_timeout: float | None, statement_timeout: float | None) -> dict[str, str]:
    """Server-side limits for every connection of the engine, as libpq startup options."""
    options = [
        f"-c {name}={int(seconds * 1000)}"
        for name, seconds in (
            ("lock_timeout", lock_timeout),
            ("statement_timeout", statement_timeout),
        )
        if seconds
    ]
    return {"options": " ".join(options)} if options else {}


class _WriterQueue(AbstractContextManager[None]):
    """This process's queue for SQLite's one write lock, waited for at most as long as
    SQLite's busy handler would wait for another process's lock: then 503."""

    def __init__(self, timeout: float) -> None:
        self._lock = threading.Lock()
        self._timeout = timeout

    def __enter__(self) -> None:
        if not self._lock.acquire(timeout=self._timeout):
            raise ServiceUnavailable("The database is busy; try again.")

    def __exit__(self, *_exc: object) -> None:
        self._lock.release()


@contextmanager
def _unavailable_on_connection_loss() -> Iterator[None]:
    """Turn "cannot reach the database" (or no free connection in time) into a 503."""
    try:
        yield
    except PoolTimeout as exc:
        log.warning("no database connection free in time: %s", exc)
        raise ServiceUnavailable("The database is busy; try again.") from exc
    except OperationalError as exc:
        if exc.connection_invalidated or _looks_like_connection_error(exc):
            log.warning("database unavailable: %s", exc.orig)
            raise ServiceUnavailable("The database is unavailable.") from exc
        raise


def _looks_like_connection_error(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return any(
        marker in text
        for marker in ("connection", "could not connect", "server closed", "timeout expired")
    )
