"""What the bulk import (:mod:`imstags.domain.bulk_import`) asks of the database: tuning a
connection for a large load, and finding which of many image ids are taken."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from imstags.storage.models import Image

SQLITE_IMPORT_CACHE_KIB = 512 * 1024
SQLITE_IMPORT_CHECKPOINT_PAGES = 50_000
# Ids per statement: below SQLite's limit on bound parameters (32,766 since 3.32).
EXISTS_CHUNK = 10_000
_EXISTING = f"SELECT id FROM {Image.__tablename__} WHERE id = ANY(%s::text[])"  # noqa: S608


def tune_for_bulk_load(session: Session) -> None:
    """Settings of the session's connection for a load of many rows (SQLite only; they end
    with the connection, so serving connections never see them)."""
    if session.get_bind().dialect.name != "sqlite":
        return
    # The unique index on (image_id, key) takes random inserts: a large page cache keeps
    # them from turning into a read syscall each.
    session.execute(text(f"PRAGMA cache_size=-{SQLITE_IMPORT_CACHE_KIB}"))
    # Each commit rewrites the index pages it touched; checkpointing less often copies a page
    # rewritten by several batches back to the database once.
    session.execute(text(f"PRAGMA wal_autocheckpoint={SQLITE_IMPORT_CHECKPOINT_PAGES}"))


def existing_image_ids(session: Session, image_ids: Sequence[str]) -> set[str]:
    """Which of ``image_ids`` are already images (of any project)."""
    ids = sorted(image_ids)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # One array parameter: binding ten thousand scalars through SQLAlchemy cost the
        # importer a tenth of its CPU.
        found = connection.exec_driver_sql(_EXISTING, (ids,))
        return {row[0] for row in found}
    existing: set[str] = set()
    for start in range(0, len(ids), EXISTS_CHUNK):
        chunk = ids[start : start + EXISTS_CHUNK]
        existing.update(session.scalars(select(Image.id).where(Image.id.in_(chunk))))
    return existing
