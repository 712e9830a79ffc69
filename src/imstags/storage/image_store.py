"""Where image data lives: a small store interface and the directory store.

An upload goes to a partial file first and becomes the image's data in one atomic rename, so
a reader sees all of an image's data or none. The partial file is held under an exclusive
``flock`` for as long as its upload runs: a process that dies mid-upload releases the lock,
and :meth:`DirectoryStore.reclaim` (run when a process starts) deletes every partial file
nobody holds. That also works on a shared mount (NFSv4 carries ``flock`` as a POSIX lock), so
several imstags hosts on one PostgreSQL can share one store directory.

Another store (an object store) implements :class:`ImageStore`; nothing above this module
knows about files.
"""

from __future__ import annotations

import errno
import fcntl
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

READ_CHUNK_BYTES = 1024 * 1024


class PartialUpload(Protocol):
    """Data being written: invisible to readers until :meth:`commit`."""

    def write(self, chunk: bytes) -> None: ...

    def commit(self) -> None:
        """Make the written bytes the image's data (replacing any left from before)."""

    def abort(self) -> None:
        """Forget the written bytes and give their space back (safe to call twice)."""


class ImageStore(Protocol):
    def start(self, image_id: str) -> PartialUpload: ...

    def is_uploading(self, image_id: str) -> bool:
        """Whether some live process (this one or another) is writing the image's data."""

    def open(self, image_id: str) -> BinaryIO | None:
        """The image's data for reading, or None when it has none."""

    def delete(self, image_id: str) -> None: ...

    def reclaim(self) -> int:
        """Delete the partial data of uploads whose process died; how many were deleted."""


class _PartialFile:
    def __init__(self, path: Path, final: Path) -> None:
        self._path = path
        self._final = final
        self._file: BinaryIO | None = open(path, "xb")  # noqa: SIM115 -- held until commit/abort
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def write(self, chunk: bytes) -> None:
        assert self._file is not None, "write after commit or abort"
        self._file.write(chunk)

    def commit(self) -> None:
        assert self._file is not None, "commit after commit or abort"
        self._file.flush()
        os.fsync(self._file.fileno())
        self._final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._path, self._final)  # the lock goes with the file, released on close
        _fsync_directory(self._final.parent)
        self._file.close()
        self._file = None

    def abort(self) -> None:
        if self._file is None:
            return
        self._path.unlink(missing_ok=True)
        self._file.close()
        self._file = None


class DirectoryStore:
    """Image data as files: ``data/<first two characters of the id>/<id>`` under ``root``,
    uploads in progress as ``partial/<id>.<random>.part``. Both on one file system, so that
    committing an upload is a rename."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._data = root / "data"
        self._partial = root / "partial"

    def prepare(self) -> None:
        self._data.mkdir(parents=True, exist_ok=True)
        self._partial.mkdir(parents=True, exist_ok=True)

    def _final(self, image_id: str) -> Path:
        return self._data / image_id[:2] / image_id

    def start(self, image_id: str) -> PartialUpload:
        self._partial.mkdir(parents=True, exist_ok=True)
        name = f"{image_id}.{uuid.uuid4().hex}.part"
        return _PartialFile(self._partial / name, self._final(image_id))

    def is_uploading(self, image_id: str) -> bool:
        return any(_held(path) for path in self._partials(f"{image_id}.*.part"))

    def open(self, image_id: str) -> BinaryIO | None:
        try:
            return open(self._final(image_id), "rb")  # noqa: SIM115 -- the caller closes it
        except FileNotFoundError:
            return None

    def delete(self, image_id: str) -> None:
        self._final(image_id).unlink(missing_ok=True)

    def reclaim(self) -> int:
        removed = 0
        for path in self._partials("*.part"):
            if not _held(path):
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def _partials(self, pattern: str) -> Iterator[Path]:
        if self._partial.is_dir():
            yield from self._partial.glob(pattern)


def _held(path: Path) -> bool:
    """Whether a live upload holds the partial file's lock (a missing file is not held)."""
    try:
        with open(path, "rb") as probe:
            try:
                fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return True
                raise
            return False  # closing the probe releases the lock at once
    except FileNotFoundError:
        return False


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
