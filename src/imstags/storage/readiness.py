"""The database side of the readiness probe: does it answer, does it take writes, and is its
schema current?"""

from __future__ import annotations

from sqlalchemy import select, text

from imstags.storage.database import Database
from imstags.storage.migrate import is_current


def schema_is_current(db: Database) -> bool:
    """Whether the schema is at the newest migration, after a trivial query has shown that
    the database answers; the driver's error (or a 503 ``ImsError``) when it does not."""
    with db.read() as session:
        session.execute(select(1))
    return is_current(db.engine, db.url)


def accepts_writes(db: Database) -> None:
    """Commit a write that changes nothing; the driver's error (or a 503 ``ImsError``) when
    the database refuses it.

    A read cannot tell: a read-only standby after a fail-over, and an SQLite database whose
    disk is full or failing, answer reads while refusing every write. Rewriting the one row of
    Alembic's version table with its own value goes through the whole write path, lock and
    commit included, and leaves the data as it was.
    """
    db.write(
        lambda session: session.execute(
            text("UPDATE alembic_version SET version_num = version_num")
        )
    )
