"""The rows of images created in bulk, and their tag rows, written in one batch (the bulk
import's load).

Millions of rows: through SQLAlchemy each one would cost more than the database's work, so on
PostgreSQL they go in with ``COPY``, its text format built here as one block of bytes per
batch (a ``write_row`` call per row cost the importer more CPU than the rows' encoding), and on
SQLite as plain tuples to one ``executemany``; always in the transaction of the caller's
session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import Column, Table
from sqlalchemy.orm import Session

from imstags.storage.models import Image, ImageTag

_COLUMNS = "image_id, key, value, project_id, created_at"
_COPY = f"COPY {ImageTag.__tablename__} ({_COLUMNS}) FROM STDIN"
_INSERT = f"INSERT INTO {ImageTag.__tablename__} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)"  # noqa: S608 (names from code, values bound)
_IMAGES = cast(Table, Image.__table__)
# What COPY's text format must escape inside a value (a backslash, and its row and column
# separators).
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: str) -> str:
    """``value`` as one field of COPY's text format."""
    # Four scans in C cost less than translate's per-character mapping, and almost every
    # value (ids, names, tags) has none of these characters.
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_ESCAPES)
    return value


def insert_new_images(
    session: Session, images: Sequence[tuple[str, str, str]], created_at: datetime
) -> None:
    """Insert images given as (id, project_id, name), created and updated at
    ``created_at``, every other column at its model's default (status ``queued``, no
    properties, ...), exactly as an ORM insert of the same values would have them."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        session.execute(
            _IMAGES.insert(),
            [
                {"id": i, "project_id": p, "name": n, "created_at": created_at,
                 "updated_at": created_at}
                for i, p, n in images
            ],
        )  # fmt: skip
        return
    given = ("id", "project_id", "name", "created_at", "updated_at")
    others = [column for column in _IMAGES.columns if column.name not in given]
    stamp = created_at.isoformat()
    # The columns after the three given ones are the same on every row.
    tail = "\t".join([stamp, stamp, *(_default_text(column) for column in others)])
    names = ", ".join([*given, *(column.name for column in others)])
    data = "".join(
        f"{copy_text(i)}\t{copy_text(p)}\t{copy_text(n)}\t{tail}\n" for i, p, n in images
    )
    _copy(session, f"COPY {_IMAGES.name} ({names}) FROM STDIN", data)  # noqa: S608


def _default_text(column: Column[Any]) -> str:
    """The model's default of ``column`` in COPY's text format (``\\N``: none)."""
    default = column.default
    if default is None:
        return "\\N"
    arg: Any = getattr(default, "arg", None)
    value = arg if getattr(default, "is_scalar", False) else cast(Callable[[Any], Any], arg)(None)
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dict | list):
        return copy_text(orjson.dumps(value).decode())
    return copy_text(str(value))


def _copy(session: Session, statement: str, data: str) -> None:
    driver: Any = session.connection().connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(data.encode())


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
    # In image id order, so that each page of the (image_id, key) index is visited once.
    image_ids = sorted(tags_by_image)
    if connection.dialect.name == "postgresql":
        return _copy_tags(session, project_id, image_ids, tags_by_image, created_at)
    # The value as the database column stores it (SQLite: text in SQLAlchemy's format, which
    # only the dialect's own type knows: the generic type has no processor, and the driver's
    # default adapter writes another text, "+00:00" for ".000000", which sorts otherwise).
    column_type = ImageTag.__table__.c.created_at.type.dialect_impl(connection.dialect)
    to_column = column_type.bind_processor(connection.dialect)
    stamp = to_column(created_at) if to_column else created_at
    rows = [
        (image_id, key, value, project_id, stamp)
        for image_id in image_ids
        for key, value in sorted(tags_by_image[image_id].items())
    ]
    if rows:
        # Plain tuples to the driver, which halves the time of millions of rows.
        connection.exec_driver_sql(_INSERT, rows)
    return len(rows)


def _copy_tags(
    session: Session,
    project_id: str,
    image_ids: Iterable[str],
    tags_by_image: Mapping[str, Mapping[str, str]],
    created_at: datetime,
) -> int:
    # A batch repeats a thousand-odd (key, value) pairs: each is escaped once.
    pairs: dict[tuple[str, str], str] = {}
    suffix = f"\t{copy_text(project_id)}\t{created_at.isoformat()}\n"
    blocks = []
    rows = 0
    for image_id in image_ids:
        tags = tags_by_image[image_id]
        if not tags:
            continue
        texts = []
        for pair in tags.items():
            found = pairs.get(pair)
            if found is None:
                found = pairs[pair] = f"{copy_text(pair[0])}\t{copy_text(pair[1])}"
            texts.append(found)
        head = copy_text(image_id) + "\t"
        # One image's rows: "id\tkey\tvalue\tproject\tstamp\n" for each of its tags.
        blocks.append(head + (suffix + head).join(texts) + suffix)
        rows += len(texts)
    if rows:
        _copy(session, _COPY, "".join(blocks))
    return rows
