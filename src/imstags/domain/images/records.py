"""The image catalog: the images that tags rest on.

An image belongs to one project; who sees what is decided in :mod:`imstags.domain.projects`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from imstags.domain.images.attributes import COLUMNS, ImageFields, split_create_body
from imstags.domain.images.tag_list import resolve_tag_list
from imstags.domain.projects import visible_to
from imstags.domain.tags.rules import MAX_TAGS_PER_IMAGE
from imstags.domain.tags.write_path import image_tags, lock_image, replace_image_tags
from imstags.errors import (
    AttributeConflict,
    BadRequest,
    ImageNotFound,
    ImageProtected,
    TagQuotaExceeded,
)
from imstags.storage.models import Image
from imstags.storage.tag_rows import TagRows


@dataclass
class ImageRecord:
    """An image with its tags, as the API layers render it."""

    image: Image
    tags: dict[str, str] = field(default_factory=dict)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# The one spelling of an image id: lower-case hexadecimal, hyphenated 8-4-4-4-12, as
# ``str(uuid.UUID(...))`` writes it. ``uuid.UUID`` itself also reads upper case, no hyphens,
# braces and ``urn:uuid:``; taking those as given would make aliases of one id (and SQLite and
# PostgreSQL disagree on the longer ones), so they are refused (docs/decisions.md, "Image ids").
_CANONICAL_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_well_formed_id(image_id: object) -> bool:
    """Is this an image id in its one canonical spelling? Any other is no image's id."""
    return isinstance(image_id, str) and _CANONICAL_ID.fullmatch(image_id) is not None


@dataclass(frozen=True)
class NewImage:
    """A native create body, validated: what :func:`create_image_tx` needs."""

    fields: ImageFields
    native_tags: list[Any]
    image_id: str | None = None


def parse_create_body(body: Mapping[str, Any]) -> NewImage:
    """Read ``POST /v2/images``: ``tags`` and ``id`` apart, the rest through
    :func:`~imstags.domain.images.attributes.split_create_body`."""
    rest = dict(body)
    tags = rest.pop("tags", [])
    if not isinstance(tags, list):
        raise BadRequest("tags must be a list of strings.")
    image_id = rest.pop("id", None)
    if image_id is not None and not is_well_formed_id(image_id):
        raise BadRequest(
            "id must be a UUID in lower case with hyphens, such as "
            "1b9e4c3a-2f5d-4e8a-9c7b-0d6e5f4a3b2c."
        )
    return NewImage(split_create_body(rest), tags, image_id)


def create_image_tx(
    session: Session,
    project_id: str,
    attributes: Mapping[str, Any],
    native_tags: list[str],
    properties: Mapping[str, Any],
    image_id: str | None = None,
) -> ImageRecord:
    """Create image metadata (status ``queued``: no data is uploaded) with its tags."""
    tags = resolve_tag_list(native_tags, {})  # two values for one key: 400
    if len(tags) > MAX_TAGS_PER_IMAGE:
        raise TagQuotaExceeded(f"An image can have at most {MAX_TAGS_PER_IMAGE} tags.")
    now = utcnow()
    new_id = image_id or str(uuid.uuid4())
    if image_id is not None and session.get(Image, image_id) is not None:
        raise AttributeConflict(f"An image with ID {image_id} already exists.")
    image = Image(
        id=new_id,
        project_id=project_id,
        status="queued",
        properties=dict(properties),
        created_at=now,
        updated_at=now,
        **{COLUMNS[name]: value for name, value in attributes.items()},
    )
    session.add(image)
    session.flush()
    replace_image_tags(TagRows.of(session), project_id, new_id, {}, tags)
    return ImageRecord(image, tags)


def get_image(session: Session, project_id: str, image_id: str) -> ImageRecord:
    image = session.scalars(
        select(Image).where(Image.id == image_id, visible_to(project_id))
    ).first()
    if image is None:
        raise ImageNotFound()
    return ImageRecord(image, image_tags(session, image_id))


def delete_image_tx(session: Session, project_id: str, image_id: str) -> None:
    """Delete an image; its tags leave the aggregate in the same transaction."""
    image = lock_image(session, project_id, image_id)
    if image.protected:
        raise ImageProtected()
    replace_image_tags(TagRows.of(session), project_id, image_id, image_tags(session, image_id), {})
    session.delete(image)
