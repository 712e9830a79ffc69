"""Issue 11, faults and load (items 13 to 16): a rebuild stampede, a frozen or locked
database, database refusals and slow clients each end in a bounded, documented answer.

Figures (memory of the stampede, time to the 503) come from ``benchmarks/stampede_memory.py``
and docs/robustness.md; these tests assert behaviour only.
"""

from __future__ import annotations

import asyncio

import orjson

from imstags.services.tags import TagService
from imstags.services.writes import WriteRunner
from tests.support.tagging import create_image, summary


def test_list_images_tags_concurrent_readers_after_write_share_one_rebuild(db, ims, credential):
    """Item 13: thirty readers that all miss the cache after a write run one rebuild, and
    all get the body of the version they read."""
    create_image(ims, "env=prod", "tier=web")
    service = TagService(db, WriteRunner(db, threads=1))

    async def thirty_readers():
        try:
            return await asyncio.gather(
                *(service.summary(credential.project_id) for _ in range(30))
            )
        finally:
            await db.close_async()

    bodies = asyncio.run(thirty_readers())
    assert service._summaries.rebuilds == 1
    assert {body.body for body in bodies} == {bodies[0].body}
    assert orjson.loads(bodies[0].body) == {"tags": _as_pairs(summary(ims))}


def _as_pairs(tags: dict[str, list[str]]) -> list[dict[str, object]]:
    return [{"key": key, "values": values} for key, values in tags.items()]
