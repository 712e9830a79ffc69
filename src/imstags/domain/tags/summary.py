"""The per-project aggregate behind ``GET /v2/{project_id}/images/tags``, as it is read.

``tag_counts`` holds (key, value) -> number of images and ``tag_versions`` a counter bumped by
every change; both are written only by :mod:`.write_path`, in the same transaction as the tags.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from imstags.storage.models import TagCount


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
