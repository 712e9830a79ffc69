"""Image tags and the per-project aggregate behind ``GET /v2/{project_id}/images/tags``.

Every change to an image's tags goes through :func:`replace_image_tags`, which writes the
difference between an image's current and desired tags to ``image_tags`` and, in the same
transaction, to the ``tag_counts`` aggregate and the project's ``tag_versions`` counter.
Nothing else writes those tables, so the aggregate equals a full recount at every commit.

The caller must hold the image's write lock (:func:`locked_image_tags` or :func:`lock_image`)
so that two writers of one image cannot both pass the 10-tag check. Counter rows are touched
in (key, value) order, which gives concurrent transactions on PostgreSQL one lock order and so
no deadlocks among tag writers. The statements themselves are in
:mod:`imstags.storage.tag_rows`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from imstags.domain.projects import visible_to
from imstags.errors import ImageNotFound, InvalidTag, TagQuotaExceeded
from imstags.storage.models import Image, ImageTag, TagCount, TagVersion
from imstags.storage.tag_rows import TagRows

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


def locked_image_tags(rows: TagRows, project_id: str, image_id: str) -> dict[str, str]:
    """The tags of the project's image, which stays locked for writing until the transaction
    ends; the tagging operations' lock (:func:`lock_image` when the image row is needed)."""
    tags = rows.locked_image_tags(project_id, image_id)
    if tags is None:
        raise ImageNotFound()
    return tags


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
    rows: TagRows,
    project_id: str,
    image_id: str,
    current: Mapping[str, str],
    desired: Mapping[str, str],
) -> bool:
    """Make the image's tags ``desired``; returns whether anything changed.

    Keeps ``tag_counts`` and ``tag_versions`` exact in the same transaction. The image row
    must exist in the database (flush a new one first); with an ORM session, pass
    ``TagRows.of(session)``.
    """
    removed = {k: v for k, v in current.items() if desired.get(k) != v}
    added = {k: v for k, v in desired.items() if current.get(k) != v}
    if not removed and not added:
        return False
    check_tag_quota(desired)
    deltas: dict[tuple[str, str], int] = {}
    for pair in removed.items():
        deltas[pair] = deltas.get(pair, 0) - 1
    for pair in added.items():
        deltas[pair] = deltas.get(pair, 0) + 1
    rows.apply(
        project_id,
        image_id,
        deleted=[k for k in removed if k not in desired],
        updated=[(k, v) for k, v in added.items() if k in current],
        inserted=[(k, v) for k, v in added.items() if k not in current],
        count_changes=_in_lock_order(deltas),
    )
    return True


def _in_lock_order(deltas: Mapping[tuple[str, str], int]) -> list[tuple[str, str, int]]:
    """Counter changes in the one global (key, value) order of every writer.

    Increments and decrements alike: two writers moving images between the same two values
    touch the same two rows, one with -1 and one with +1, and must not lock them in opposite
    orders.
    """
    return [(key, value, delta) for (key, value), delta in sorted(deltas.items()) if delta]


def tag_new_images(
    session: Session,
    project_id: str,
    tags_by_image: Mapping[str, Mapping[str, str]],
    created_at: datetime,
) -> int:
    """The batched form of :func:`replace_image_tags` for images that have no tags yet.

    For the bulk import: the images were inserted in this transaction (all at ``created_at``,
    which ``image_tags`` carries beside each tag), so their current tags are known to be empty
    and no lock is needed. Tags must already be validated (by the same :func:`validate_tag`);
    the quota is checked here again. All rows go in with one ``executemany`` (or COPY), and the
    aggregate gets one upsert per distinct (key, value) pair of the whole batch and one version
    bump, instead of one per image. Returns the rows written.
    """
    rows: list[tuple[str, str, str, str, object]] = []
    deltas: dict[tuple[str, str], int] = {}
    connection = session.connection()
    # The value as the database column stores it (SQLite: text in SQLAlchemy's format).
    to_column = ImageTag.__table__.c.created_at.type.bind_processor(connection.dialect)
    stamp = to_column(created_at) if to_column else created_at
    for image_id, tags in tags_by_image.items():
        check_tag_quota(tags)
        for key, value in tags.items():
            rows.append((image_id, key, value, project_id, stamp))
            deltas[key, value] = deltas.get((key, value), 0) + 1
    if rows:
        # In index order, so that each page of the (image_id, key) index is visited once; and
        # as plain tuples to the driver, which halves the time of millions of rows.
        rows.sort()
        columns = "image_id, key, value, project_id, created_at"
        if connection.dialect.name == "postgresql":  # COPY: several times faster than INSERT
            driver: Any = connection.connection.driver_connection
            with (
                driver.cursor() as cursor,
                cursor.copy(f"COPY image_tags ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        else:
            marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
            statement = f"INSERT INTO image_tags ({columns}) VALUES ({', '.join([marker] * 5)})"  # noqa: S608
            connection.exec_driver_sql(statement, rows)
        TagRows.of(session).adjust_counts(project_id, _in_lock_order(deltas))
    return len(rows)


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
