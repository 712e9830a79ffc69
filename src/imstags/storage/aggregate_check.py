"""The tag aggregate (``tag_counts``) compared with a recount from ``image_tags``, and rewritten.

The comparison is one statement (a full outer join of the stored counts with the recount), so
that on a live database it reads one consistent state on PostgreSQL as on SQLite, without
holding any lock. The rewrite runs in a write transaction that first stops tag writers (see
:func:`lock_tag_tables`), so the recount it writes cannot go stale before it commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from imstags.storage.models import ImageTag, TagCount, TagVersion


@dataclass(frozen=True)
class TagCountRow:
    """One (project, key, value) as stored in the aggregate and as recounted; None: no row
    (stored) or no image with that tag (recounted)."""

    project_id: str
    key: str
    value: str
    stored: int | None
    recounted: int | None

    @property
    def exact(self) -> bool:
        return self.stored == self.recounted


def compare_tag_counts(session: Session, project_id: str | None = None) -> Iterator[TagCountRow]:
    """Every pair of the aggregate or of the recount (of one project, or all), in order."""
    recount_query = select(
        ImageTag.project_id, ImageTag.key, ImageTag.value, func.count().label("images")
    ).group_by(ImageTag.project_id, ImageTag.key, ImageTag.value)
    if project_id is not None:
        recount_query = recount_query.where(ImageTag.project_id == project_id)
    recount = recount_query.subquery("recount")
    stored_query = select(TagCount)
    if project_id is not None:
        stored_query = stored_query.where(TagCount.project_id == project_id)
    stored = stored_query.subquery("stored")
    joined = recount.join(
        stored,
        (recount.c.project_id == stored.c.project_id)
        & (recount.c.key == stored.c.key)
        & (recount.c.value == stored.c.value),
        full=True,
    )
    pair = (
        func.coalesce(stored.c.project_id, recount.c.project_id),
        func.coalesce(stored.c.key, recount.c.key),
        func.coalesce(stored.c.value, recount.c.value),
    )
    rows = session.execute(
        select(*pair, stored.c.image_count, recount.c.images)
        .select_from(joined)
        .order_by(*pair)
        .execution_options(yield_per=10_000)
    )
    for project, key, value, stored_count, recounted in rows:
        yield TagCountRow(project, key, value, stored_count, recounted)


def lock_tag_tables(session: Session) -> None:
    """Make the session's write transaction the only tag writer until it ends.

    SQLite: the write transaction holds the database's one write lock already. PostgreSQL:
    a table lock that waits for transactions writing either table to end and keeps new ones
    out, while readers go on (SHARE ROW EXCLUSIVE conflicts with ROW EXCLUSIVE, not with the
    ACCESS SHARE of plain reads).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE image_tags, tag_counts IN SHARE ROW EXCLUSIVE MODE"))


def rewrite_tag_counts(session: Session, rows: Iterable[TagCountRow]) -> set[str]:
    """Set the aggregate of each of ``rows`` to its recount and bump the version of every
    project changed, so that every process's cached summary is rebuilt. Returns those
    projects. Runs in the caller's transaction, after :func:`lock_tag_tables`."""
    changed: set[str] = set()
    for row in rows:
        if row.exact:
            continue
        changed.add(row.project_id)
        where = (
            (TagCount.project_id == row.project_id)
            & (TagCount.key == row.key)
            & (TagCount.value == row.value)
        )
        if not row.recounted:
            session.execute(delete(TagCount).where(where))
        elif row.stored is None:
            session.execute(
                insert(TagCount).values(
                    project_id=row.project_id,
                    key=row.key,
                    value=row.value,
                    image_count=row.recounted,
                )
            )
        else:
            session.execute(update(TagCount).where(where).values(image_count=row.recounted))
    for project_id in sorted(changed):
        version = session.get(TagVersion, project_id)
        if version is None:
            session.add(TagVersion(project_id=project_id, version=1))
        else:
            version.version += 1
    session.flush()
    return changed
