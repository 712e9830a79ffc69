"""Image tags and the per-project aggregate behind ``GET /v2/{project_id}/images/tags``.

Every change to an image's tags goes through :func:`replace_image_tags`, which writes the
difference between an image's current and desired tags to ``image_tags`` and, in the same
transaction, to the ``tag_counts`` aggregate and the project's ``tag_versions`` counter.
Nothing else writes those tables, so the aggregate equals a full recount at every commit.

The caller must hold the image's write lock (see :func:`lock_image`) so that two writers of
one image cannot both pass the 10-tag check. Counter rows are touched in (key, value) order,
which gives concurrent transactions on PostgreSQL one lock order and so no deadlocks among
tag writers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from imstags.domain.projects import visible_to
from imstags.errors import ImageNotFound, InvalidTag, TagQuotaExceeded
from imstags.storage.models import Image, ImageTag, TagCount, TagVersion

MAX_TAGS_PER_IMAGE = 10
KEY_MAX_LENGTH = 36
VALUE_MAX_LENGTH = 43
# Deleting is lenient: only lengths are checked, and longer ones (reference: batch delete).
DELETE_KEY_MAX_LENGTH = 127
DELETE_VALUE_MAX_LENGTH = 255
# A native OpenStack tag is one string; "key=value" maps to an IMS key/value pair.
NATIVE_SEPARATOR = "="
NATIVE_TAG_MAX_LENGTH = 255


@dataclass(frozen=True)
class TagFilter:
    """A tag named for deletion: ``value=None`` matches the key whatever its value."""

    key: str
    value: str | None = None


def _has_control_chars(text: str) -> bool:
    return any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)


def validate_tag(key: object, value: object) -> tuple[str, str]:
    """Check one key/value pair to be written; returns it with outer spaces removed.

    The reference trims leading and trailing spaces of keys and values and limits them to 36
    and 43 characters; a key must not be empty. Control characters are refused, and so is
    ``=`` in a key, since "key=value" is how the tag reads through the native OpenStack API.
    """
    if not isinstance(key, str):
        raise InvalidTag("The tag key must be a string.")
    if value is None:
        raise InvalidTag(f"The tag '{key}' has no value; a key-only tag has the value \"\".")
    if not isinstance(value, str):
        raise InvalidTag("The tag value must be a string.")
    key, value = key.strip(), value.strip()
    if not key:
        raise InvalidTag("The tag key cannot be empty.")
    if len(key) > KEY_MAX_LENGTH:
        raise InvalidTag(f"The tag key '{key}' is longer than {KEY_MAX_LENGTH} characters.")
    if len(value) > VALUE_MAX_LENGTH:
        raise InvalidTag(
            f"The value of tag key '{key}' is longer than {VALUE_MAX_LENGTH} characters."
        )
    if NATIVE_SEPARATOR in key:
        raise InvalidTag(f"The tag key '{key}' must not contain '{NATIVE_SEPARATOR}'.")
    if _has_control_chars(key) or _has_control_chars(value):
        raise InvalidTag("The tag key and value must not contain control characters.")
    return key, value


def validate_tags_to_write(tags: Iterable[tuple[object, object]]) -> dict[str, str]:
    """Validate a request's tags to add: keys must be unique within the request."""
    result: dict[str, str] = {}
    for raw_key, raw_value in tags:
        key, value = validate_tag(raw_key, raw_value)
        if key in result:
            raise InvalidTag(f"The tag key '{key}' occurs more than once in the request.")
        result[key] = value
    return result


def validate_tag_filters(tags: Iterable[tuple[object, object]]) -> list[TagFilter]:
    """Validate a request's tags to delete: characters are not checked, lengths are."""
    filters: list[TagFilter] = []
    for key, value in tags:
        if not isinstance(key, str) or not key.strip():
            raise InvalidTag("The tag key cannot be empty.")
        if len(key) > DELETE_KEY_MAX_LENGTH:
            raise InvalidTag(f"The tag key is longer than {DELETE_KEY_MAX_LENGTH} characters.")
        if value is not None and not isinstance(value, str):
            raise InvalidTag("The tag value must be a string.")
        if value is not None and len(value) > DELETE_VALUE_MAX_LENGTH:
            raise InvalidTag(f"The tag value is longer than {DELETE_VALUE_MAX_LENGTH} characters.")
        filters.append(TagFilter(key, value))
    return filters


# --- native OpenStack string tags ------------------------------------------------------------


def parse_native_tag(tag: str) -> tuple[str, str]:
    """``"k=v"`` is key k with value v; ``"k"`` is key k with the empty value."""
    key, _, value = tag.partition(NATIVE_SEPARATOR)
    return key, value


def format_native_tag(key: str, value: str) -> str:
    return f"{key}{NATIVE_SEPARATOR}{value}" if value else key


def validate_native_tag(tag: object) -> tuple[str, str]:
    """A native tag string (image creation, PATCH, native PUT): ``"k=v"`` or ``"k"``.

    The native format limits the whole string to 1-255 characters (image_tag_format.rst,
    creating_image_metadata); the IMS limits of 36/43 are those of tags written through the
    IMS APIs. Key and value lose their outer spaces, as IMS tags do; the key must not be
    empty; control characters are refused.
    """
    if not isinstance(tag, str) or not tag:
        raise InvalidTag("A tag must be a non-empty string.")
    if len(tag) > NATIVE_TAG_MAX_LENGTH:
        raise InvalidTag(f"A tag is 1 to {NATIVE_TAG_MAX_LENGTH} characters long.")
    key, value = (part.strip() for part in parse_native_tag(tag))
    if not key:
        raise InvalidTag("The key of a tag (before any '=') must not be empty.")
    if _has_control_chars(tag):
        raise InvalidTag("A tag must not contain control characters.")
    return key, value


# --- reading and locking ---------------------------------------------------------------------


def lock_image(session: Session, project_id: str, image_id: str) -> Image:
    """The project's image, locked for writing until the transaction ends.

    Another project's image is reported as missing (:func:`~imstags.domain.projects.visible_to`
    decides), like one that does not exist. On SQLite
    the whole database is already write-locked (``BEGIN IMMEDIATE``).
    """
    stmt = select(Image).where(Image.id == image_id, visible_to(project_id))
    if session.get_bind().dialect.name != "sqlite":
        stmt = stmt.with_for_update()
    image = session.scalars(stmt).first()
    if image is None:
        raise ImageNotFound()
    return image


def image_tags(session: Session, image_id: str) -> dict[str, str]:
    rows = session.execute(
        select(ImageTag.key, ImageTag.value).where(ImageTag.image_id == image_id)
    )
    return {key: value for key, value in rows}


def tags_of_images(session: Session, image_ids: list[str]) -> dict[str, dict[str, str]]:
    """Tags of many images in one query (for listings)."""
    result: dict[str, dict[str, str]] = {image_id: {} for image_id in image_ids}
    if not image_ids:
        return result
    rows = session.execute(
        select(ImageTag.image_id, ImageTag.key, ImageTag.value).where(
            ImageTag.image_id.in_(image_ids)
        )
    )
    for image_id, key, value in rows:
        result[image_id][key] = value
    return result


# --- the one write path ----------------------------------------------------------------------


def check_tag_quota(tags: Mapping[str, str]) -> None:
    """The 10-tag limit, shared by the per-image path and the bulk import."""
    if len(tags) > MAX_TAGS_PER_IMAGE:
        raise TagQuotaExceeded(
            f"An image can have at most {MAX_TAGS_PER_IMAGE} tags; "
            f"this request would leave it with {len(tags)}."
        )


def replace_image_tags(
    session: Session,
    image: Image,
    current: Mapping[str, str],
    desired: Mapping[str, str],
) -> bool:
    """Make the image's tags ``desired``; returns whether anything changed.

    Keeps ``tag_counts`` and ``tag_versions`` exact in the same transaction.
    """
    removed = {k: v for k, v in current.items() if desired.get(k) != v}
    added = {k: v for k, v in desired.items() if current.get(k) != v}
    if not removed and not added:
        return False
    check_tag_quota(desired)
    gone = [k for k in removed if k not in desired]
    if gone:
        session.execute(
            delete(ImageTag).where(ImageTag.image_id == image.id, ImageTag.key.in_(gone))
        )
    for key, value in added.items():
        if key in current:
            session.execute(
                update(ImageTag)
                .where(ImageTag.image_id == image.id, ImageTag.key == key)
                .values(value=value)
            )
        else:
            session.add(
                ImageTag(image_id=image.id, key=key, value=value, project_id=image.project_id)
            )
    session.flush()

    deltas: dict[tuple[str, str], int] = {}
    for pair in removed.items():
        deltas[pair] = deltas.get(pair, 0) - 1
    for pair in added.items():
        deltas[pair] = deltas.get(pair, 0) + 1
    adjust_counts(session, image.project_id, deltas)
    return True


def tag_new_images(
    session: Session, project_id: str, tags_by_image: Mapping[str, Mapping[str, str]]
) -> int:
    """The batched form of :func:`replace_image_tags` for images that have no tags yet.

    For the bulk import: the images were inserted in this transaction, so their current tags
    are known to be empty and no lock is needed. Tags must already be validated (by the same
    :func:`validate_tag`); the quota is checked here again. All rows go in with one
    ``executemany``, and the aggregate gets one upsert per distinct (key, value) pair of the
    whole batch and one version bump, instead of one per image. Returns the rows written.
    """
    rows: list[tuple[str, str, str, str]] = []
    deltas: dict[tuple[str, str], int] = {}
    for image_id, tags in tags_by_image.items():
        check_tag_quota(tags)
        for key, value in tags.items():
            rows.append((image_id, key, value, project_id))
            deltas[key, value] = deltas.get((key, value), 0) + 1
    if rows:
        # In index order, so that each page of the (image_id, key) index is visited once; and
        # as plain tuples to the driver, which halves the time of millions of rows.
        rows.sort()
        columns = "image_id, key, value, project_id"
        connection = session.connection()
        if connection.dialect.name == "postgresql":  # COPY: several times faster than INSERT
            driver = connection.connection.driver_connection
            with (
                driver.cursor() as cursor,
                cursor.copy(  # type: ignore[union-attr]
                    f"COPY image_tags ({columns}) FROM STDIN"
                ) as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        else:
            marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
            statement = f"INSERT INTO image_tags ({columns}) VALUES ({', '.join([marker] * 4)})"  # noqa: S608
            connection.exec_driver_sql(statement, rows)
        adjust_counts(session, project_id, deltas)
    return len(rows)


def adjust_counts(session: Session, project_id: str, deltas: Mapping[tuple[str, str], int]) -> None:
    """Apply count changes to the aggregate and bump the project's version once.

    Every counter row is touched in one global (key, value) order, increments and decrements
    alike, so that concurrent PostgreSQL transactions never wait for each other in a cycle
    (two writers moving images between the same two values touch the same two rows, one with
    -1 and one with +1). Runs of consecutive increments go in as one ``executemany`` upsert,
    which is what keeps the bulk import (increments only) fast.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = cast(Table, TagCount.__table__)  # mapped classes type it as a FromClause
    upsert = insert(table)
    upsert = upsert.on_conflict_do_update(
        index_elements=["project_id", "key", "value"],
        set_={"image_count": table.c.image_count + upsert.excluded.image_count},
    )
    increments: list[dict[str, object]] = []

    def flush_increments() -> None:
        if increments:
            session.execute(upsert, increments)
            increments.clear()

    for (key, value), delta in sorted(deltas.items()):
        if delta > 0:
            increments.append(
                {"project_id": project_id, "key": key, "value": value, "image_count": delta}
            )
        elif delta < 0:
            flush_increments()
            where = (
                (table.c.project_id == project_id) & (table.c.key == key) & (table.c.value == value)
            )
            session.execute(
                update(table).where(where).values(image_count=table.c.image_count + delta)
            )
            session.execute(delete(table).where(where & (table.c.image_count <= 0)))
    flush_increments()
    version = cast(Table, TagVersion.__table__)
    session.execute(
        insert(version)
        .values(project_id=project_id, version=1)
        .on_conflict_do_update(
            index_elements=["project_id"], set_={"version": version.c.version + 1}
        )
    )


# --- the aggregate ---------------------------------------------------------------------------


def tags_version(session: Session, project_id: str) -> int:
    version = session.scalar(select(TagVersion.version).where(TagVersion.project_id == project_id))
    return version or 0


def project_tag_summary(session: Session, project_id: str) -> list[dict[str, object]]:
    """Every key of the project's images with its distinct values.

    Keys in ascending code-point order, each key's values likewise (the order is ours, the
    reference names none; sorting here rather than in SQL keeps it the same on every database).
    """
    grouped: dict[str, list[str]] = {}
    rows = session.execute(
        select(TagCount.key, TagCount.value).where(
            TagCount.project_id == project_id, TagCount.image_count > 0
        )
    )
    for key, value in rows:
        grouped.setdefault(key, []).append(value)
    return [{"key": key, "values": sorted(grouped[key])} for key in sorted(grouped)]


def recount_project_tags(session: Session, project_id: str) -> dict[tuple[str, str], int]:
    """A full recount from ``image_tags`` (for checks and repair, never on the request path)."""
    from sqlalchemy import func

    rows = session.execute(
        select(ImageTag.key, ImageTag.value, func.count())
        .where(ImageTag.project_id == project_id)
        .group_by(ImageTag.key, ImageTag.value)
    )
    return {(key, value): count for key, value, count in rows}


def stored_counts(session: Session, project_id: str) -> dict[tuple[str, str], int]:
    rows = session.execute(
        select(TagCount.key, TagCount.value, TagCount.image_count).where(
            TagCount.project_id == project_id
        )
    )
    return {(key, value): count for key, value, count in rows}
