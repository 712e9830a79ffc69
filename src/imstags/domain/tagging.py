"""The IMS image-tagging operations, each one write transaction over :mod:`imstags.domain.tags`.

Functions named ``*_tx`` run inside a transaction that the caller opened with
``Database.write``; the others open their own.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from imstags.domain.tags import (
    TagFilter,
    image_tags,
    lock_image,
    replace_image_tags,
    validate_tag_filters,
    validate_tags_to_write,
)
from imstags.errors import BadRequest
from imstags.storage.database import Database

ACTIONS = ("create", "delete")


def batch_action(
    db: Database,
    project_id: str,
    image_id: str,
    action: str,
    tags: Sequence[tuple[object, object]],
) -> None:
    """``POST /v2/{project_id}/images/{image_id}/tags/action``: idempotent create or delete.

    ``create`` adds or overwrites by key (same key and value: nothing happens); ``delete``
    removes a key when its value matches or when no value is given, and ignores tags the image
    does not have. The action name is case-sensitive.
    """
    if action not in ACTIONS:
        raise BadRequest(f"The action must be 'create' or 'delete', not '{action}'.")
    if action == "create":
        to_write = validate_tags_to_write(tags)
        db.write(lambda s: add_tags_tx(s, project_id, image_id, to_write))
    else:
        filters = validate_tag_filters(tags)
        db.write(lambda s: delete_tags_tx(s, project_id, image_id, filters))


def add_tags_tx(session: Session, project_id: str, image_id: str, tags: dict[str, str]) -> bool:
    image = lock_image(session, project_id, image_id)
    current = image_tags(session, image_id)
    return replace_image_tags(session, image, current, {**current, **tags})


def delete_tags_tx(
    session: Session, project_id: str, image_id: str, filters: Sequence[TagFilter]
) -> bool:
    image = lock_image(session, project_id, image_id)
    current = image_tags(session, image_id)
    desired = dict(current)
    for tag in filters:
        if tag.key in desired and tag.value in (None, desired[tag.key]):
            del desired[tag.key]
    return replace_image_tags(session, image, current, desired)
