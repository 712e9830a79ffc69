"""What ``imstags images list`` and ``imstags tags list`` show: the catalog and the tag
aggregate, read in batches so that a million images stream instead of filling memory."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from imstags.storage.models import Image, ImageTag, TagCount

BATCH = 1000


@dataclass(frozen=True)
class ImageLine:
    project_id: str
    id: str
    name: str
    status: str
    visibility: str
    created_at: datetime
    tags: dict[str, str]


@dataclass(frozen=True)
class TagCountLine:
    project_id: str
    key: str
    value: str
    images: int


def iter_images(session: Session, project_id: str | None, limit: int | None) -> Iterator[ImageLine]:
    """Images in (project, id) order with their tags; keyset pages of ``BATCH``."""
    after: tuple[str, str] | None = None
    left = limit
    while left is None or left > 0:
        size = BATCH if left is None else min(BATCH, left)
        query = select(Image).order_by(Image.project_id, Image.id).limit(size)
        if project_id is not None:
            query = query.where(Image.project_id == project_id)
        if after is not None:
            query = query.where(
                (Image.project_id > after[0])
                | ((Image.project_id == after[0]) & (Image.id > after[1]))
            )
        images = list(session.scalars(query))
        if not images:
            return
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        rows = session.execute(
            select(ImageTag.image_id, ImageTag.key, ImageTag.value).where(
                ImageTag.image_id.in_([image.id for image in images])
            )
        )
        for image_id, key, value in rows:
            tags[image_id][key] = value
        for image in images:
            yield ImageLine(
                image.project_id,
                image.id,
                image.name,
                image.status,
                image.visibility,
                image.created_at,
                dict(sorted(tags[image.id].items())),
            )
        after = (images[-1].project_id, images[-1].id)
        if left is not None:
            left -= len(images)


def iter_tag_counts(session: Session, project_id: str | None) -> Iterator[TagCountLine]:
    """The stored aggregate behind the core endpoint, in (project, key, value) order."""
    query = select(TagCount).where(TagCount.image_count > 0)
    if project_id is not None:
        query = query.where(TagCount.project_id == project_id)
    query = query.order_by(TagCount.project_id, TagCount.key, TagCount.value)
    for row in session.scalars(query.execution_options(yield_per=BATCH)):
        yield TagCountLine(row.project_id, row.key, row.value, row.image_count)
