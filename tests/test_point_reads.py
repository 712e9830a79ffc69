"""``Database.lookup``, the hot path's one read: lookups waiting at the same time share a query
(on PostgreSQL, one ``= ANY`` statement for several projects), and each still gets its own
project's value, read after it arrived."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from imstags.storage.database import Database
from imstags.storage.models import TagVersion
from imstags.storage.point_reads import TAG_VERSION


def _set_versions(db: Database, versions: dict[str, int]) -> None:
    def work(session: Session) -> None:
        session.execute(delete(TagVersion).where(TagVersion.project_id.in_(list(versions))))
        session.execute(
            insert(TagVersion),
            [{"project_id": key, "version": value} for key, value in versions.items()],
        )

    db.write(work)


def test_concurrent_lookups_of_many_projects_each_get_their_own_value(db: Database) -> None:
    versions = {f"pr-{uuid.uuid4().hex[:12]}": number for number in range(1, 9)}
    _set_versions(db, versions)
    missing = f"pr-{uuid.uuid4().hex[:12]}"
    keys = [*versions, missing] * 5  # repeated keys share a row, others the statement

    async def look_up_all() -> list[object]:
        try:
            return await asyncio.gather(*(db.lookup(*TAG_VERSION, key) for key in keys))
        finally:
            await db.close_async()

    found = asyncio.run(look_up_all())
    assert found == [versions.get(key) for key in keys]


def test_a_lookup_sees_a_write_committed_before_it(db: Database) -> None:
    project = f"pr-{uuid.uuid4().hex[:12]}"
    _set_versions(db, {project: 1})

    async def read_write_read() -> tuple[object, object]:
        try:
            first = await db.lookup(*TAG_VERSION, project)
            _set_versions(db, {project: 2})
            return first, await db.lookup(*TAG_VERSION, project)
        finally:
            await db.close_async()

    assert asyncio.run(read_write_read()) == (1, 2)


def test_a_cancelled_lookup_leaves_the_others_answered(db: Database) -> None:
    project = f"pr-{uuid.uuid4().hex[:12]}"
    _set_versions(db, {project: 7})

    async def cancel_one() -> list[object]:
        try:
            tasks = [asyncio.ensure_future(db.lookup(*TAG_VERSION, project)) for _ in range(4)]
            await asyncio.sleep(0)
            tasks[0].cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            return [type(result).__name__ if isinstance(result, BaseException) else result
                    for result in results]  # fmt: skip
        finally:
            await db.close_async()

    results = asyncio.run(cancel_one())
    assert results[1:] == [7, 7, 7]
    assert results[0] in ("CancelledError", 7)  # SQLite answers before the cancel lands
