"""The tag rows of images created in bulk, written in one batch (the bulk import's load).

Millions of rows: through SQLAlchemy each one would cost more than the database's work, so
they go to the driver as plain tuples, with ``COPY`` on PostgreSQL (several times faster than
``INSERT``) and one ``executemany`` on SQLite, in the transaction of the caller's session.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from imstags.storage.models import ImageTag

_COLUMNS = "image_id, key, value, project_id, created_at"
_COPY = f"COPY {ImageTag.__tablename__} ({_COLUMNS}) FROM STDIN"
_INSERT = f"INSERT INTO {ImageTag.__tablename__} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)"  # noqa: S608 (names from code, values bound)


def insert_new_image_tags(
    session: Session,
    project_id: str,
    tags_by_image: Mapping[str, Mapping[str, str]],
    created_at: datetime,
) -> int:
    """Insert the ``image_tags`` rows of images that have none yet, all created at
    ``created_at`` (which each tag row carries beside it); returns the rows written.

    Only the rows: the aggregate is the caller's to adjust (``TagRows.adjust_counts``).
    """
    connection = session.connection()
    # The value as the database column stores it (SQLite: text in SQLAlchemy's format, which
    # only the dialect's own type knows: the generic type has no processor, and the driver's
    # default adapter writes another text, "+00:00" for ".000000", which sorts otherwise).
    column_type = ImageTag.__table__.c.created_at.type.dialect_impl(connection.dialect)
    to_column = column_type.bind_processor(connection.dialect)
    stamp = to_column(created_at) if to_column else created_at
    rows = [
        (image_id, key, value, project_id, stamp)
        for image_id, tags in tags_by_image.items()
        for key, value in tags.items()
    ]
    if not rows:
        return 0
    # In index order, so that each page of the (image_id, key) index is visited once; and as
    # plain tuples to the driver, which halves the time of millions of rows.
    rows.sort()
    if connection.dialect.name == "postgresql":
        driver: Any = connection.connection.driver_connection
        with driver.cursor() as cursor, cursor.copy(_COPY) as copy:
            for row in rows:
                copy.write_row(row)
    else:
        connection.exec_driver_sql(_INSERT, rows)
    return len(rows)
