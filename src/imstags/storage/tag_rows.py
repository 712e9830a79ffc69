"""The tag write path's statements, as fixed SQL run on the driver's own connection.

A tag write is a dozen tiny statements. Built and executed through SQLAlchemy each one cost
about 100 us of Python (operator coercion, cache keys, result wrapping), many times the
database's own work, which capped writes at a few hundred a second. Here they are constant
strings run on the DB-API connection of the caller's transaction (so they commit or roll back
with it), and on PostgreSQL the writes go out in one pipelined round trip.

The schema they name is the one of :mod:`imstags.storage.models`; the tests run every write
through them on both databases and compare the aggregate with a full recount.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from imstags.storage.models import Image
from imstags.storage.visibility import image_for_write

# The image's write lock, then its tags. Two statements, not a join: on PostgreSQL a statement
# that waited for the lock still reads other tables as of its own start, and would miss the
# tags written by the transaction it waited for. The lock is compiled from the ORM's
# statement, so the visibility rule and the lock clause are the ORM's, once per database;
# its parameters are the image id, then the project id (tests/test_tag_storage.py).
_LOCK = image_for_write(bindparam("project_id"), bindparam("image_id"), Image.id)
_LOCK_IMAGE = {
    postgres: str(_LOCK.compile(dialect=dialect))
    for postgres, dialect in (
        (False, sqlite.dialect()),
        # The PostgreSQL dialect's constructor is untyped in SQLAlchemy's stubs.
        (True, postgresql.dialect(paramstyle="format")),  # type: ignore[no-untyped-call]
    )
}
_IMAGE_TAGS = "SELECT key, value FROM image_tags WHERE image_id = ?"
_DELETE_TAG = "DELETE FROM image_tags WHERE image_id = ? AND key = ?"
_UPDATE_TAG = "UPDATE image_tags SET value = ? WHERE image_id = ? AND key = ?"
# created_at is copied from the image row, so it is stored exactly as the image's is.
_INSERT_TAG = (
    "INSERT INTO image_tags (image_id, key, value, project_id, created_at)"
    " SELECT id, ?, ?, project_id, created_at FROM images WHERE id = ?"
)
_INCREMENT = (
    "INSERT INTO tag_counts (project_id, key, value, image_count) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (project_id, key, value)"
    " DO UPDATE SET image_count = tag_counts.image_count + excluded.image_count"
)
_DECREMENT = (
    "UPDATE tag_counts SET image_count = image_count + ?"
    " WHERE project_id = ? AND key = ? AND value = ?"
)
_DROP_EMPTY = (
    "DELETE FROM tag_counts WHERE project_id = ? AND key = ? AND value = ? AND image_count <= 0"
)
_BUMP_VERSION = (
    "INSERT INTO tag_versions (project_id, version) VALUES (?, 1)"
    " ON CONFLICT (project_id) DO UPDATE SET version = tag_versions.version + 1"
)


def _for_psycopg(statement: str) -> str:
    # None of the statements holds a literal '?' or '%', so the markers translate one for one.
    return statement.replace("?", "%s")


class TagRows:
    """The tag tables of one open write transaction.

    ``Database.write_tags`` opens one on a bare driver connection (the tagging operations);
    :meth:`of` joins the transaction of an ORM session (image creation, PATCH, deletion).
    """

    def __init__(self, driver_connection: Any, *, postgres: bool) -> None:
        self._driver = driver_connection
        self._postgres = postgres

    @classmethod
    def of(cls, session: Session) -> TagRows:
        connection = session.connection()
        return cls(
            connection.connection.driver_connection,
            postgres=connection.dialect.name == "postgresql",
        )

    def _sql(self, statement: str) -> str:
        return _for_psycopg(statement) if self._postgres else statement

    def locked_image_tags(self, project_id: str, image_id: str) -> dict[str, str] | None:
        """The image's tags, its row locked until the transaction ends; None if not visible.

        On SQLite the whole database is already write-locked (``BEGIN IMMEDIATE``); on
        PostgreSQL the image row is locked, which orders writers of one image.
        """
        lock = _LOCK_IMAGE[self._postgres]
        # Pipelined on PostgreSQL: one round trip, the second statement still starting (and
        # taking its snapshot) only once the first holds the lock.
        with self._pipeline():
            found = self._driver.execute(lock, (image_id, project_id))
            tags = self._driver.execute(self._sql(_IMAGE_TAGS), (image_id,))
        if found.fetchone() is None:
            return None
        return dict(tags.fetchall())

    def apply(
        self,
        project_id: str,
        image_id: str,
        *,
        deleted: Sequence[str],
        updated: Sequence[tuple[str, str]],
        inserted: Sequence[tuple[str, str]],
        count_changes: Iterable[tuple[str, str, int]],
    ) -> None:
        """Write the difference of one image's tags, then the aggregate and the version.

        ``count_changes`` must come in (key, value) order: it is the order in which counter
        rows are locked, the same for every writer, so PostgreSQL writers never deadlock.
        """
        with self._batch() as cursor:
            sql = self._sql
            if deleted:
                cursor.executemany(sql(_DELETE_TAG), [(image_id, key) for key in deleted])
            if updated:
                cursor.executemany(sql(_UPDATE_TAG), [(v, image_id, k) for k, v in updated])
            if inserted:
                cursor.executemany(sql(_INSERT_TAG), [(k, v, image_id) for k, v in inserted])
            self._adjust_counts(cursor, project_id, count_changes)

    def adjust_counts(self, project_id: str, count_changes: Iterable[tuple[str, str, int]]) -> None:
        """Apply (key, value, delta) changes in the order given, then bump the version once.

        The order rule of :meth:`apply` holds here too. Runs of increments go in as one
        ``executemany`` upsert, which is the bulk import's whole load.
        """
        with self._batch() as cursor:
            self._adjust_counts(cursor, project_id, count_changes)

    def _pipeline(self) -> AbstractContextManager[Any]:
        """On PostgreSQL, statements sent without awaiting each reply: one round trip for the
        block. They still run one after the other, and errors surface before it ends."""
        return self._driver.pipeline() if self._postgres else nullcontext()

    @contextmanager
    def _batch(self) -> Iterator[Any]:
        with self._pipeline():
            yield self._driver.cursor()

    def _adjust_counts(
        self, cursor: Any, project_id: str, count_changes: Iterable[tuple[str, str, int]]
    ) -> None:
        sql = self._sql
        increments: list[tuple[str, str, str, int]] = []
        for key, value, delta in count_changes:
            if delta > 0:
                increments.append((project_id, key, value, delta))
            elif delta < 0:
                if increments:
                    cursor.executemany(sql(_INCREMENT), increments)
                    increments = []
                cursor.execute(sql(_DECREMENT), (delta, project_id, key, value))
                cursor.execute(sql(_DROP_EMPTY), (project_id, key, value))
        if increments:
            cursor.executemany(sql(_INCREMENT), increments)
        cursor.execute(sql(_BUMP_VERSION), (project_id,))
