"""The database side of the readiness probe: does it answer, and is its schema current?"""

from __future__ import annotations

from sqlalchemy import select

from imstags.storage.database import Database
from imstags.storage.migrate import is_current


def schema_is_current(db: Database) -> bool:
    """Whether the schema is at the newest migration, after a trivial query has shown that
    the database answers; the driver's error (or a 503 ``ImsError``) when it does not."""
    with db.read() as session:
        session.execute(select(1))
    return is_current(db.engine, db.url)
