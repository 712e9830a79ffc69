"""Image catalog use cases: create, list, show, patch and delete image metadata.

Reads run on the shared thread pool, writes on the writer threads; each opens its own
transaction. An id that is not a UUID names no image, so it is 404 before any database work.
"""

from __future__ import annotations

from collections.abc import Sequence

from imstags.domain.images import listing, patch, records
from imstags.errors import ImageNotFound
from imstags.services.threads import run_blocking
from imstags.services.writes import WriteRunner
from imstags.storage.database import Database
from imstags.storage.image_store import ImageStore


class ImageService:
    def __init__(self, db: Database, writes: WriteRunner, store: ImageStore) -> None:
        self._db = db
        self._writes = writes
        self._store = store

    async def create_image(self, project_id: str, new: records.NewImage) -> records.ImageRecord:
        columns, properties = new.fields.columns, new.fields.properties
        record: records.ImageRecord = await self._writes.run(
            self._db.write,
            lambda session: records.create_image_tx(
                session, project_id, columns, new.native_tags, properties, new.image_id
            ),
        )
        return record

    async def list_images(
        self,
        project_id: str,
        params: Sequence[tuple[str, str]],
        *,
        default_limit: int,
        hide_hidden: bool = False,
    ) -> listing.ImageListPage:
        """One page of the project's images that the query parameters select."""
        query = listing.parse_list_query(
            project_id, params, default_limit=default_limit, hide_hidden=hide_hidden
        )
        return await run_blocking(self._run_list_query, query)

    def _run_list_query(self, query: listing.ImageListQuery) -> listing.ImageListPage:
        with self._db.read() as session:
            return listing.run_list_query(session, query)

    async def get_image(self, project_id: str, image_id: str) -> records.ImageRecord:
        _check_id(image_id)
        return await run_blocking(self._read_image, project_id, image_id)

    def _read_image(self, project_id: str, image_id: str) -> records.ImageRecord:
        with self._db.read() as session:
            return records.get_image(session, project_id, image_id)

    async def patch_image(
        self,
        project_id: str,
        image_id: str,
        operations: Sequence[patch.PatchOperation],
        flavour: patch.Flavour,
    ) -> records.ImageRecord:
        """Apply a parsed JSON patch (all of it or nothing) in one write transaction."""
        _check_id(image_id)
        record: records.ImageRecord = await self._writes.run(
            self._db.write,
            lambda session: patch.apply_patch_tx(
                session, project_id, image_id, operations, flavour
            ),
        )
        return record

    async def delete_image(self, project_id: str, image_id: str) -> None:
        """Delete the image, then its data (a protected image is refused first and keeps
        both). An upload still running finds the image gone and drops what it stored."""
        _check_id(image_id)
        await self._writes.run(
            self._db.write, lambda session: records.delete_image_tx(session, project_id, image_id)
        )
        await run_blocking(self._store.delete, image_id)


def _check_id(image_id: str) -> None:
    if not records.is_well_formed_id(image_id):
        raise ImageNotFound()
