"""Indexes that a first bulk load into PostgreSQL builds after its rows, not row by row.

A profile of ``imstags images import`` at a million images of workload W showed PostgreSQL's
backend spending about half its time inserting into the b-trees of ``image_tags`` one row at a
time (the primary key takes its rows in random ``image_id`` order, so each batch touched pages
all over an index that soon outgrows memory) and a quarter on the foreign key's check, a
query per tag row. When ``images`` and ``image_tags`` are both empty there is nothing to serve
from them yet, so the import drops those structures (:data:`DEFERRED`), loads, and builds them
at the end, each from one sorted pass over the table, with ``maintenance_work_mem`` and
parallel workers of its own session.

The definitions come from the models, which ``tests/test_migrations.py`` holds equal to the
migrations, so a rebuilt index is the migrations' index, name and all.

A load can die half way (SIGKILL, a lost connection). Its batches stay committed and the
structures stay missing until something rebuilds them: every ``imstags`` command that
migrates the schema first (``services.admin.upgrade_schema``: ``db upgrade``, ``serve`` at its
start, the next ``images import``, ``db check``, ...) calls :func:`rebuild_missing_indexes`.
While a load is running it holds an advisory lock (:data:`LOAD_LOCK`) on a connection of its
own, and a rebuild only happens under that lock, so a command run beside a live load does not
build the indexes under it; a dead load's session is gone, and its lock with it.

Uniqueness needs no index during the load: ``images`` keeps its primary key, which the
import's check for existing ids reads, every imported image is new, and one image's tags are
a mapping, one value per key. A tag write through the API to an imported image while the
load runs still works, but reads its image's tags by scanning the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Dialect, Engine, ForeignKeyConstraint, Table, create_engine, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import AddConstraint, CreateIndex

from imstags.storage.database import PG_CONNECT_ARGS, normalise_url
from imstags.storage.models import Image, ImageTag

# pg_advisory_lock's key for "a bulk load is running": the bytes of "imstload".
LOAD_LOCK = int.from_bytes(b"imstload", "big")
# Memory of each index build's sort. A sort that fits is one pass; at ten million images the
# largest index is about 10 GB of keys, so it spills anyway, in fewer and longer runs.
BUILD_MEMORY = "1GB"
BUILD_WORKERS = 2


@dataclass(frozen=True)
class DeferredIndex:
    """An index or constraint dropped for a first load: its name, and the DDL of each way."""

    name: str
    table: str
    create: str
    drop: str


def _structures() -> tuple[DeferredIndex, ...]:
    """Every index and constraint of ``images`` and ``image_tags``, in the order they can be
    dropped; built in the reverse order (the foreign key last, after the key it refers to)."""
    dialect: Dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    images, tags = cast(Table, Image.__table__), cast(Table, ImageTag.__table__)
    found: list[DeferredIndex] = []
    for table in (tags, images):
        for constraint in sorted(table.foreign_key_constraints, key=lambda c: str(c.name)):
            found.append(_constraint(table, constraint, dialect))
    for table in (tags, images):
        found.append(_constraint(table, table.primary_key, dialect))
    for table in (tags, images):
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            found.append(
                DeferredIndex(
                    str(index.name),
                    table.name,
                    str(CreateIndex(index).compile(dialect=dialect)),
                    f"DROP INDEX {index.name}",
                )
            )
    return tuple(found)


def _constraint(table: Table, constraint: object, dialect: Dialect) -> DeferredIndex:
    ddl = str(AddConstraint(constraint).compile(dialect=dialect))  # type: ignore[arg-type]
    name = str(cast(ForeignKeyConstraint, constraint).name)
    return DeferredIndex(name, table.name, ddl, f"ALTER TABLE {table.name} DROP CONSTRAINT {name}")


STRUCTURES = _structures()
# Kept through a first load: the images' primary key, which the import's check for existing
# ids reads (and a load of W has one image row to ten tag rows). The by-tag index was tried
# kept as well (each batch extends a thousand-odd (key, value) ranges at their ends, pages
# that stay in memory): at 1M the load took as long as loading and then sorting, and the
# index came out a quarter larger (half-full pages where ranges meet).
KEPT_LIVE = frozenset({"pk_images"})
DEFERRED = tuple(item for item in STRUCTURES if item.name not in KEPT_LIVE)

_PRESENT = text(
    "SELECT conname FROM pg_constraint"
    " WHERE conrelid IN ('images'::regclass, 'image_tags'::regclass)"
    " UNION SELECT indexname FROM pg_indexes"
    " WHERE schemaname = current_schema() AND tablename IN ('images', 'image_tags')"
)
_TABLES_EMPTY = text(
    "SELECT NOT EXISTS (SELECT 1 FROM images) AND NOT EXISTS (SELECT 1 FROM image_tags)"
)


class LoadIndexes:
    """The deferred structures of :data:`DEFERRED`, seen from a connection that holds (or
    failed to take) the load lock. Get one from :func:`load_indexes`."""

    def __init__(self, connection: Connection | None, held: bool) -> None:
        self._connection = connection
        self.held = held

    def missing(self) -> list[DeferredIndex]:
        if self._connection is None:
            return []
        with _transaction(self._connection) as connection:
            present = set(connection.execute(_PRESENT).scalars())
        return [item for item in STRUCTURES if item.name not in present]

    def drop_if_empty(self) -> list[str]:
        """Drop the deferred structures when both tables are empty (a first load) and this
        holds the load lock; returns the names dropped (none otherwise)."""
        if self._connection is None or not self.held:
            return []
        with _transaction(self._connection) as connection:
            # Both tables locked until the drops commit, so that no row arrives in between.
            connection.execute(text("LOCK TABLE images, image_tags IN EXCLUSIVE MODE"))
            if not connection.execute(_TABLES_EMPTY).scalar():
                return []
            present = set(connection.execute(_PRESENT).scalars())
            dropped = [item for item in DEFERRED if item.name in present]
            for item in dropped:
                connection.execute(text(item.drop))
        return [item.name for item in dropped]

    def rebuild_missing(self) -> list[str]:
        """Build every deferred structure that is missing, one transaction each (a build
        that dies leaves none half made, and those done before it stay); returns the names
        built. Only under the load lock: without it, a live load may be running."""
        if self._connection is None or not self.held:
            return []
        built = []
        for item in reversed(self.missing()):
            with _transaction(self._connection) as connection:
                connection.execute(text(f"SET LOCAL maintenance_work_mem = '{BUILD_MEMORY}'"))
                connection.execute(
                    text(f"SET LOCAL max_parallel_maintenance_workers = {BUILD_WORKERS}")
                )
                connection.execute(text(item.create))
            built.append(item.name)
        return built

    def vacuum_analyze(self) -> bool:
        """``VACUUM (ANALYZE)`` of the tables a load wrote (PostgreSQL; False on SQLite).

        ANALYZE alone gives the planner its statistics. The vacuum also marks the new pages
        all-visible, which index-only scans need: without it, the query by tag at offset
        10,000 fetched ten thousand heap rows from all over the table instead of reading a
        hundred-odd index pages, until an autovacuum came (never, on a server with
        autovacuum off; hours later with the default thresholds at a hundred million rows).
        On a table vacuumed before, it visits only the pages changed since.
        """
        if self._connection is None:
            return False
        # (The driver's connection: a detached connection has no driver_connection.)
        driver: Any = self._connection.connection.dbapi_connection
        driver.autocommit = True  # VACUUM refuses to run in a transaction block
        try:
            driver.execute("VACUUM (ANALYZE) images, image_tags, tag_counts")
        finally:
            driver.autocommit = False
        return True


@contextmanager
def load_indexes(engine: Engine) -> Iterator[LoadIndexes]:
    """A :class:`LoadIndexes` on a connection of its own that holds the load lock if no one
    else does (``held``); the lock goes with the connection, which is closed at the end.
    On SQLite nothing is deferred: the object is inert."""
    if engine.dialect.name != "postgresql":
        yield LoadIndexes(None, held=False)
        return
    connection = engine.connect()
    # Closed, not returned to the pool, at the end: a session-level advisory lock would
    # otherwise outlive the load on a pooled connection.
    connection.detach()
    try:
        with _transaction(connection):
            lock = connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOAD_LOCK})
            held = bool(lock.scalar())
        yield LoadIndexes(connection, held)
    finally:
        connection.close()


def rebuild_missing_indexes(url: str) -> list[str]:
    """The deferred structures a load that died left missing, built again (PostgreSQL; not
    while a load runs); returns their names. For the schema upgrade every command runs."""
    if not normalise_url(url).startswith("postgresql"):
        return []
    engine = create_engine(normalise_url(url), connect_args=dict(PG_CONNECT_ARGS))
    try:
        with load_indexes(engine) as indexes:
            return indexes.rebuild_missing()
    finally:
        engine.dispose()


@contextmanager
def _transaction(connection: Connection) -> Iterator[Connection]:
    """The transaction that the connection's next statement begins, committed at the end of
    the block (rolled back on an error); session-level settings and locks outlive it."""
    try:
        yield connection
    except BaseException:
        connection.rollback()
        raise
    connection.commit()
