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

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from imstags.domain.tags.rules import MAX_TAGS_PER_IMAGE
from imstags.errors import ImageNotFound, TagQuotaExceeded
from imstags.storage.models import Image, ImageTag, TagCount
from imstags.storage.new_image_tags import insert_new_image_tags
from imstags.storage.tag_rows import TagRows
from imstags.storage.visibility import image_for_write

# --- reading and locking ---------------------------------------------------------------------


def lock_image(session: Session, project_id: str, image_id: str) -> Image:
    """The project's image, locked for writing until the transaction ends
    (:func:`~imstags.storage.visibility.image_for_write`, the same lock as the tag write
    path's); another project's image is reported as missing, like one that does not exist."""
    image: Image | None = session.scalars(image_for_write(project_id, image_id)).first()
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
        raise tag_quota_exceeded(len(tags))


def tag_quota_exceeded(count: int) -> TagQuotaExceeded:
    """The refusal of a write that would leave an image with ``count`` tags; one wording for
    the Python write path and PostgreSQL's tag-change function, which reports the count."""
    return TagQuotaExceeded(
        f"An image can have at most {MAX_TAGS_PER_IMAGE} tags; "
        f"this request would leave it with {count}."
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
    the quota is checked here again. The rows go in as one batch
    (:func:`~imstags.storage.new_image_tags.insert_new_image_tags`), and the aggregate gets one
    upsert per distinct (key, value) pair of the whole batch and one version bump, instead of
    one per image. Returns the rows written.
    """
    deltas: dict[tuple[str, str], int] = {}
    for tags in tags_by_image.values():
        check_tag_quota(tags)
        for pair in tags.items():
            deltas[pair] = deltas.get(pair, 0) + 1
    written = insert_new_image_tags(session, project_id, tags_by_image, created_at)
    if written:
        TagRows.of(session).adjust_counts(project_id, _in_lock_order(deltas))
    return written


def remove_project_tags(session: Session, project_id: str) -> None:
    """Every tag of the project's images, and their aggregate, gone (a project reset).

    Each pair's count goes to zero through the same counter path as any other write, so the
    rows leave ``tag_counts`` and the version is bumped once: a process holding the project's
    old body sees the change at its next request.
    """
    counts = session.execute(
        select(TagCount.key, TagCount.value, TagCount.image_count).where(
            TagCount.project_id == project_id
        )
    ).all()
    session.execute(delete(ImageTag).where(ImageTag.project_id == project_id))
    deltas = {(key, value): -int(count) for key, value, count in counts}
    TagRows.of(session).adjust_counts(project_id, _in_lock_order(deltas))
