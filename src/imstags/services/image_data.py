"""Image data use cases: upload, download, deactivate/reactivate, and the start-up cleanup.

Data streams through in pieces of at most :data:`WRITE_CHUNK_BYTES`: an upload is hashed and
written on the shared thread pool piece by piece, a download read the same way, so a process
holds about one piece per transfer whatever the image's size. The status moves
(:mod:`imstags.domain.images.lifecycle`) run on the writer threads, each in its own short
transaction: no transaction stays open while data flows.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import BinaryIO

import anyio

from imstags.domain.images import lifecycle
from imstags.domain.images.data_range import parse_byte_range
from imstags.domain.images.records import is_well_formed_id
from imstags.errors import (
    BadRequest,
    ImageFileTooLarge,
    ImageNotFound,
    ImsError,
    ServiceUnavailable,
)
from imstags.services.faults import StatusFault
from imstags.services.threads import run_blocking
from imstags.services.writes import WriteRunner
from imstags.storage.database import Database
from imstags.storage.image_store import ImageStore, PartialUpload

log = logging.getLogger(__name__)
WRITE_CHUNK_BYTES = 1024 * 1024
RECLAIM_SECONDS = 10.0
READ_CHUNK_BYTES = 1024 * 1024


@dataclass
class DataDownload:
    """An image's data (or the part of it a range asked for), ready to stream."""

    size: int  # of the whole data
    checksum: str | None
    start: int
    length: int
    partial: bool  # a range was asked for and is served (206)
    chunks: AsyncIterator[bytes]


class ImageDataService:
    def __init__(
        self, db: Database, writes: WriteRunner, store: ImageStore, *, max_image_bytes: int
    ) -> None:
        self._db = db
        self._writes = writes
        self._store = store
        self._max = max_image_bytes
        self._held: set[str] = set()  # images a hold rule keeps ``saving``, data stored
        self._holds: set[asyncio.Task[None]] = set()

    def _uploading(self, image_id: str) -> bool:
        return image_id in self._held or self._store.is_uploading(image_id)

    async def reclaim_interrupted(self) -> list[str]:
        """At start-up: delete partial data nobody writes any more, and put each image whose
        upload died (left ``saving``) back to ``queued`` without data. Returns those ids.

        Never fatal and bounded in time: a database that is down or slow at start-up must not
        keep the process from serving (the next start, or a new upload of the image, which
        takes over a dead upload, finishes the job)."""
        with anyio.move_on_after(RECLAIM_SECONDS):
            try:
                return await self._reclaim()
            except Exception:
                log.warning("could not reclaim interrupted uploads at start-up", exc_info=True)
        return []

    async def _reclaim(self) -> list[str]:
        await run_blocking(self._store.reclaim)
        requeued: list[str] = await self._writes.run(
            self._db.write,
            lambda session: lifecycle.requeue_interrupted_tx(session, self._uploading),
        )
        for image_id in requeued:
            await run_blocking(self._store.delete, image_id)
        return requeued

    async def upload(
        self,
        project_id: str,
        image_id: str,
        chunks: AsyncIterator[bytes],
        *,
        declared_length: int | None,
        body_check: Callable[[str], None] | None,
        status_fault: StatusFault | None = None,
    ) -> None:
        """Store the data and make the image ``active``; on any failure (too large, cut off,
        ``body_check`` refusing the data's SHA-256, a fault) the image goes back to ``queued``
        and nothing of the data stays. No data at all leaves a queued image as it was.

        ``status_fault`` (a fired fault rule): ``kill`` discards the received data and makes the
        image ``killed``; ``hold`` stores it, answers, and makes the image ``active`` only
        ``hold`` seconds later (``saving`` meanwhile, and no other upload may take over)."""
        _check_id(image_id)
        await self._writes.run(
            self._db.write,
            lambda s: lifecycle.begin_upload_tx(s, project_id, image_id, self._uploading),
        )
        partial: PartialUpload | None = None
        stored = False
        try:
            if declared_length is not None and declared_length > self._max:
                raise ImageFileTooLarge(f"Image data is limited to {self._max} bytes.")
            partial = await run_blocking(self._store.start, image_id)
            digest = await self._receive(chunks, partial, body_check is not None)
            if declared_length is not None and digest.size != declared_length:
                raise BadRequest("The upload ended before all its data arrived.")
            if body_check is not None:
                body_check(digest.sha256 or "")  # an AK/SK signature must cover this data
            if digest.size == 0:
                await self._clean_up(project_id, image_id, partial, stored=False)
                return
            if status_fault is not None and status_fault.kill:
                await run_blocking(partial.abort)
                partial = None
                await self._writes.run(
                    self._db.write, lambda s: lifecycle.kill_upload_tx(s, project_id, image_id)
                )
                return
            await run_blocking(partial.commit)
            stored = True
            if status_fault is not None and status_fault.hold:
                self._hold(project_id, image_id, digest, status_fault.hold)
                return
            await self._writes.run(
                self._db.write,
                lambda s: lifecycle.finish_upload_tx(s, project_id, image_id, digest),
            )
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await self._clean_up(project_id, image_id, partial, stored=stored)
            if isinstance(exc, OSError):
                raise _store_error(exc) from exc
            raise

    def _hold(
        self, project_id: str, image_id: str, digest: lifecycle.DataDigest, seconds: float
    ) -> None:
        """Make the image ``active`` ``seconds`` from now, in a task of this process (a process
        that stops meanwhile leaves it ``saving``: the next start puts it back to ``queued``)."""
        self._held.add(image_id)
        task = asyncio.get_running_loop().create_task(
            self._finish_later(project_id, image_id, digest, seconds)
        )
        self._holds.add(task)
        task.add_done_callback(self._holds.discard)

    async def _finish_later(
        self, project_id: str, image_id: str, digest: lifecycle.DataDigest, seconds: float
    ) -> None:
        try:
            await anyio.sleep(seconds)
            await self._writes.run(
                self._db.write,
                lambda s: lifecycle.finish_upload_tx(s, project_id, image_id, digest),
            )
        except Exception:
            log.warning("a held upload of %s could not finish", image_id, exc_info=True)
            with anyio.CancelScope(shield=True):
                await self._clean_up(project_id, image_id, None, stored=True)
        finally:
            self._held.discard(image_id)

    async def _receive(
        self, chunks: AsyncIterator[bytes], partial: PartialUpload, with_sha256: bool
    ) -> lifecycle.DataDigest:
        digest = lifecycle.DataDigest(with_sha256=with_sha256)
        pending = bytearray()
        async for chunk in chunks:
            if digest.size + len(pending) + len(chunk) > self._max:
                raise ImageFileTooLarge(f"Image data is limited to {self._max} bytes.")
            pending += chunk
            if len(pending) >= WRITE_CHUNK_BYTES:
                await run_blocking(_write, partial, digest, bytes(pending))
                pending.clear()
        if pending:
            await run_blocking(_write, partial, digest, bytes(pending))
        return digest

    async def _clean_up(
        self, project_id: str, image_id: str, partial: PartialUpload | None, *, stored: bool
    ) -> None:
        if partial is not None:
            await run_blocking(partial.abort)
        if stored:
            await run_blocking(self._store.delete, image_id)
        await self._writes.run(
            self._db.write, lambda s: lifecycle.abort_upload_tx(s, project_id, image_id)
        )

    async def download(
        self, project_id: str, image_id: str, byte_range: str | None
    ) -> DataDownload | None:
        """The image's data, or None when it has none (Glance's 204)."""
        _check_id(image_id)
        facts = await run_blocking(self._stored_data, project_id, image_id)
        if facts.status != lifecycle.ACTIVE or facts.size is None:
            return None
        span = parse_byte_range(byte_range, facts.size)
        start, stop = span or (0, facts.size)
        handle = await run_blocking(self._store.open, image_id)
        if handle is None:
            raise ServiceUnavailable("The image's data is missing from the image store.")
        return DataDownload(
            size=facts.size,
            checksum=facts.checksum,
            start=start,
            length=stop - start,
            partial=span is not None,
            chunks=_read(handle, start, stop - start),
        )

    def _stored_data(self, project_id: str, image_id: str) -> lifecycle.StoredData:
        with self._db.read() as session:
            return lifecycle.stored_data(session, project_id, image_id)

    async def deactivate(self, project_id: str, image_id: str) -> None:
        _check_id(image_id)
        await self._writes.run(
            self._db.write, lambda s: lifecycle.deactivate_tx(s, project_id, image_id)
        )

    async def reactivate(self, project_id: str, image_id: str) -> None:
        _check_id(image_id)
        await self._writes.run(
            self._db.write, lambda s: lifecycle.reactivate_tx(s, project_id, image_id)
        )


def _write(partial: PartialUpload, digest: lifecycle.DataDigest, data: bytes) -> None:
    digest.update(data)  # hashlib releases the GIL on large buffers
    partial.write(data)


async def _read(handle: BinaryIO, start: int, length: int) -> AsyncIterator[bytes]:
    try:
        await run_blocking(handle.seek, start)
        left = length
        while left > 0:
            chunk = await run_blocking(handle.read, min(READ_CHUNK_BYTES, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
    finally:
        handle.close()


def _store_error(exc: OSError) -> ImsError:
    """A full store is the client's 413, as Glance answers it; any other failure of the store
    a 503 that a retry (after the operator's fix) may cure."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ImageFileTooLarge("The image store is full.")
    log.warning("the image store failed", exc_info=exc)
    return ServiceUnavailable("The image store could not store the data.")


def _check_id(image_id: str) -> None:
    if not is_well_formed_id(image_id):
        raise ImageNotFound()
