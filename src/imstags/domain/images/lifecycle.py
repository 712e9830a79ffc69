"""An image's status and the moves between them, as Glance makes them.

``queued`` (no data) -> ``saving`` (an upload runs) -> ``active`` (data stored, size and
hashes known). An upload that fails or is cut off goes back to ``queued``, and so does one
whose process died (found ``saving`` with nobody writing). ``active`` <-> ``deactivated``
through the deactivate/reactivate actions; a deactivated image's data cannot be downloaded.
``saving`` -> ``killed`` only by a fault injection ``kill`` rule: the data is discarded, and a
killed image is final (no upload, no (de/re)activation; it can be deleted), as in Glance.
Every function named ``*_tx`` runs in a write transaction that a service opened and takes
the image's write lock first, so two uploads of one image cannot both start.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from imstags.domain.images.records import ImageRecord, get_image, utcnow
from imstags.domain.tags.write_path import image_tags, lock_image
from imstags.errors import Forbidden, ImageNotFound, ImageStatusConflict, ImageUnavailable
from imstags.storage.models import Image

QUEUED = "queued"
SAVING = "saving"
ACTIVE = "active"
DEACTIVATED = "deactivated"
KILLED = "killed"
HASH_ALGORITHM = "sha512"  # Glance's default os_hash_algo


@dataclass
class DataDigest:
    """Size and hashes of data, computed as it streams past (never all of it in memory).

    ``sha256`` is computed only when asked for: an AK/SK-signed upload must match the body
    hash its signature covers.
    """

    with_sha256: bool = False
    size: int = 0
    _md5: Any = field(default_factory=hashlib.md5)
    _multihash: Any = field(default_factory=lambda: hashlib.new(HASH_ALGORITHM))
    _sha256: Any = None

    def __post_init__(self) -> None:
        if self.with_sha256:
            self._sha256 = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._md5.update(chunk)
        self._multihash.update(chunk)
        if self._sha256 is not None:
            self._sha256.update(chunk)

    @property
    def checksum(self) -> str:
        return str(self._md5.hexdigest())

    @property
    def os_hash_value(self) -> str:
        return str(self._multihash.hexdigest())

    @property
    def sha256(self) -> str | None:
        return None if self._sha256 is None else str(self._sha256.hexdigest())


@dataclass(frozen=True)
class StoredData:
    """What a download needs to know of an image's data."""

    image_id: str
    status: str
    size: int | None
    checksum: str | None


def begin_upload_tx(
    session: Session, project_id: str, image_id: str, uploading: Callable[[str], bool]
) -> None:
    """``queued`` -> ``saving``. An image found ``saving`` whose upload nobody runs any more
    (``uploading(image_id)`` is false: its process died) is taken over; any other status is
    a 409, as in Glance."""
    image = lock_image(session, project_id, image_id)
    if image.status == SAVING and uploading(image_id):
        raise ImageStatusConflict("The image's data is being uploaded already.")
    if image.status not in (QUEUED, SAVING):
        raise ImageStatusConflict(
            f"Image status transition from {image.status} to {SAVING} is not allowed: "
            "an image's data can be uploaded once."
        )
    image.status = SAVING
    image.updated_at = utcnow()


def finish_upload_tx(
    session: Session, project_id: str, image_id: str, digest: DataDigest
) -> ImageRecord:
    """``saving`` -> ``active`` with the data's size and hashes. The image must still be
    ``saving``: deleted meanwhile it is a 404, and the caller drops the data."""
    image = lock_image(session, project_id, image_id)
    if image.status != SAVING:
        raise ImageStatusConflict(f"The image is {image.status}, no longer {SAVING}.")
    image.size = digest.size
    image.checksum = digest.checksum
    image.os_hash_algo = HASH_ALGORITHM
    image.os_hash_value = digest.os_hash_value
    image.status = ACTIVE
    image.updated_at = utcnow()
    return ImageRecord(image, image_tags(session, image_id))


def kill_upload_tx(session: Session, project_id: str, image_id: str) -> None:
    """``saving`` -> ``killed`` without data (a ``kill`` fault rule); the image must still be
    ``saving``: deleted meanwhile it is a 404."""
    image = lock_image(session, project_id, image_id)
    if image.status != SAVING:
        raise ImageStatusConflict(f"The image is {image.status}, no longer {SAVING}.")
    image.status = KILLED
    image.updated_at = utcnow()


def abort_upload_tx(session: Session, project_id: str, image_id: str) -> None:
    """A failed upload: ``saving`` -> ``queued`` (a deleted image stays deleted)."""
    try:
        image = lock_image(session, project_id, image_id)
    except ImageNotFound:
        return
    if image.status == SAVING:
        image.status = QUEUED
        image.updated_at = utcnow()


def requeue_interrupted_tx(session: Session, uploading: Callable[[str], bool]) -> list[str]:
    """Every ``saving`` image whose upload no live process runs goes back to ``queued``
    (run at start-up: a crash mid-upload). Returns their ids, whose data the caller deletes
    (a crash between storing the data and marking the image ``active`` leaves some)."""
    stuck = session.scalars(select(Image).where(Image.status == SAVING)).all()
    requeued = []
    for image in stuck:
        if not uploading(image.id):
            image.status = QUEUED
            image.updated_at = utcnow()
            requeued.append(image.id)
    return requeued


def stored_data(session: Session, project_id: str, image_id: str) -> StoredData:
    """The image's data facts for a download; a deactivated image's data is refused (403)."""
    image = get_image(session, project_id, image_id).image
    if image.status == DEACTIVATED:
        raise ImageUnavailable(
            "The requested image has been deactivated. Image data download is forbidden."
        )
    return StoredData(image.id, image.status, image.size, image.checksum)


def check_ims_updatable(status: str) -> None:
    """IMS's update page changes only ``active`` images. ``queued`` ones too, as a departure:
    an image made through the native API waits there for its data, and tools set its
    attributes before they upload (as Glance allows). Any other status is a 409."""
    if status not in (QUEUED, ACTIVE):
        raise ImageStatusConflict(
            f"Only active (or queued) images can be updated; this image is {status}."
        )


def deactivate_tx(session: Session, project_id: str, image_id: str) -> None:
    """``active`` -> ``deactivated``; deactivating a deactivated image changes nothing."""
    _move(session, project_id, image_id, (ACTIVE, DEACTIVATED), DEACTIVATED, "deactivate")


def reactivate_tx(session: Session, project_id: str, image_id: str) -> None:
    """``deactivated`` -> ``active``; reactivating an active image changes nothing."""
    _move(session, project_id, image_id, (DEACTIVATED, ACTIVE), ACTIVE, "reactivate")


def _move(
    session: Session,
    project_id: str,
    image_id: str,
    allowed: tuple[str, ...],
    target: str,
    action: str,
) -> None:
    image = lock_image(session, project_id, image_id)
    if image.status not in allowed:
        raise Forbidden(f"Not allowed to {action} an image in status '{image.status}'.")
    if image.status != target:
        image.status = target
        image.updated_at = utcnow()
