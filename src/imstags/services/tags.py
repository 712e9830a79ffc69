"""Every use case of image tags, whichever API family asks: :class:`TagService`.

A write's tags are checked on the event loop, into a :class:`~imstags.domain.tags.change.TagChange`.
On PostgreSQL the change is one statement awaited on the loop (``Database.change_tags``); on
SQLite it runs on the writer thread (:mod:`.writes`) as one transaction of the tag write path
(``Database.write_tags``). Both paths give the same answers. Reads run
on the shared thread pool (:mod:`.threads`), except the core endpoint's version lookup, which
is awaited on the event loop. The service owns the core endpoint's body cache.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.orm import Session

from imstags.domain.tags import operations, query_by_tag, v1_listing
from imstags.domain.tags.change import TagChange, settle
from imstags.domain.tags.rules import MAX_TAGS_PER_IMAGE
from imstags.domain.tags.summary import project_tag_summary
from imstags.services.tag_summary import SummaryBody, SummaryCache
from imstags.services.threads import run_blocking
from imstags.services.writes import WriteRunner
from imstags.storage.database import Database
from imstags.storage.point_reads import TAG_VERSION

P = ParamSpec("P")
T = TypeVar("T")
TagPairs = Sequence[tuple[object, object]]  # as sent: checked by the domain's rules


class TagService:
    def __init__(self, db: Database, writes: WriteRunner, *, summary_projects: int = 1024) -> None:
        self._db = db
        self._writes = writes
        self._summaries = SummaryCache(summary_projects)

    # --- reads -----------------------------------------------------------------------------

    async def summary(self, project_id: str) -> SummaryBody:
        """``GET /v2/{project_id}/images/tags``: the project's serialised summary.

        The hot path: one awaited lookup of the project's version, and the cached body while
        it is current; only a rebuild goes to the thread pool.
        """
        version = await self._db.lookup(*TAG_VERSION, project_id) or 0
        body = self._summaries.cached(project_id, version)
        if body is None:
            body = await self._summaries.body(
                project_id, version, lambda: run_blocking(self._read_summary, project_id)
            )
        return body

    def _read_summary(self, project_id: str) -> list[dict[str, object]]:
        with self._db.read() as session:
            return project_tag_summary(session, project_id)

    async def image_tags(self, project_id: str, image_id: str) -> list[tuple[str, str]]:
        """The tags of one of the project's images, by key."""
        return await run_blocking(self._read, operations.visible_image_tags, project_id, image_id)

    async def query_by_tag(
        self, project_id: str, fields: Mapping[str, Any]
    ) -> query_by_tag.TagMatchResult:
        """Images of the project filtered or counted by tag; ``fields`` as the request sent
        them (checked here, before any thread is taken)."""
        query = query_by_tag.parse_tag_match_query(fields)
        return await run_blocking(self._read, query_by_tag.run_tag_match_query, project_id, query)

    async def tag_strings(self, project_id: str, params: Sequence[tuple[str, str]]) -> list[str]:
        """``GET /v1/cloudimages/tags``: the tags of a page of images, as native strings;
        ``params`` are the query string's (name, value) pairs, the image listing's filters."""
        return await run_blocking(self._read, v1_listing.tag_strings_of_page, project_id, params)

    def _read(
        self, query: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        with self._db.read() as session:
            return query(session, *args, **kwargs)

    # --- writes ----------------------------------------------------------------------------

    async def batch_action(
        self, project_id: str, image_id: str, action: str, tags: TagPairs
    ) -> None:
        """Create or delete several tags of an image at once (idempotent)."""
        await self._write(operations.plan_batch_action(project_id, image_id, action, tags))

    async def add_tag(self, project_id: str, image_id: str, key: object, value: object) -> None:
        await self._write(operations.plan_add_tag(project_id, image_id, key, value))

    async def delete_tag(self, project_id: str, image_id: str, key: str) -> None:
        """Delete the image's tag with this key; a key it lacks is a 404."""
        await self._write(operations.plan_delete_key(project_id, image_id, key))

    async def batch_delete(self, project_id: str, image_id: str, tags: TagPairs) -> None:
        await self._write(operations.plan_batch_delete(project_id, image_id, tags))

    async def add_or_modify_tag(
        self,
        project_id: str,
        image_id: str,
        tag: str | None,
        image_tag: tuple[object, object] | None,
    ) -> None:
        """One tag, as a ``key.value`` string or as a key/value pair (exactly one of them)."""
        await self._write(operations.plan_add_or_modify(project_id, image_id, tag, image_tag))

    async def add_native_tag(self, project_id: str, image_id: str, tag: str) -> None:
        await self._write(operations.plan_native_add(project_id, image_id, tag))

    async def delete_native_tag(self, project_id: str, image_id: str, tag: str) -> None:
        await self._write(operations.plan_native_delete(project_id, image_id, tag))

    async def _write(self, change: TagChange) -> None:
        if self._db.changes_tags_in_one_statement:
            await self._writes.run_on_loop(self._change_in_one_statement, change)
        else:
            await self._writes.run(self._db.write_tags, change)

    async def _change_in_one_statement(self, change: TagChange) -> bool:
        outcome = await self._db.change_tags(
            change.project_id,
            change.image_id,
            upserts=change.upserts,
            removals=change.removals,
            required=change.required,
            max_tags=MAX_TAGS_PER_IMAGE,
        )
        return settle(change, outcome)
