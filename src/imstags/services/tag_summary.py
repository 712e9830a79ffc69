"""A per-process cache of the core endpoint's serialised body, keyed by the project's version.

Each request reads the project's version (one primary-key lookup on a kept connection, see
:mod:`imstags.storage.point_reads`); the body is rebuilt only when another transaction, in this
process or any other, has bumped it. Reading the version before the rows matters: a body built
from rows newer than the version it is stored under is harmless (it is rebuilt on the next
request), while the reverse could serve stale data.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import orjson

from imstags.domain.tags.summary import project_tag_summary, tags_version
from imstags.storage.database import Database
from imstags.storage.models import TagVersion

_VERSION = (TagVersion.__tablename__, "version", "project_id")


@dataclass(frozen=True)
class SummaryBody:
    version: int
    body: bytes
    etag: str


class SummaryCache:
    def __init__(self, db: Database, max_projects: int = 1024) -> None:
        self._db = db
        self._max = max_projects
        self._entries: OrderedDict[str, SummaryBody] = OrderedDict()
        self._lock = threading.Lock()

    async def current(self, project_id: str) -> tuple[int, SummaryBody | None]:
        """The project's version and, if it is still current, the cached body: the cheap part,
        fit to run on the event loop (one indexed lookup, no pool, no session)."""
        version = await self._db.lookup(*_VERSION, project_id) or 0
        return version, self._cached(project_id, version)

    def _cached(self, project_id: str, version: int) -> SummaryBody | None:
        # A lock-free read (one dict lookup is atomic): the hit is the hot path. Recency is
        # recorded when a body is built, so eviction drops the least recently rebuilt project.
        cached = self._entries.get(project_id)
        return cached if cached is not None and cached.version == version else None

    def build(self, project_id: str, version: int) -> SummaryBody:
        """Rebuild the body from the aggregate and store it under ``version`` (read before)."""
        with self._db.read() as session:
            body = orjson.dumps({"tags": project_tag_summary(session, project_id)})
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        entry = SummaryBody(version, body, etag)
        with self._lock:
            self._entries[project_id] = entry
            self._entries.move_to_end(project_id)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return entry

    def get(self, project_id: str) -> SummaryBody:
        """Both steps in the calling (worker) thread, the version read through a session."""
        with self._db.read() as session:
            version = tags_version(session, project_id)
        cached = self._cached(project_id, version)
        return cached if cached is not None else self.build(project_id, version)
