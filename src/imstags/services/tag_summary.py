"""A per-process cache of the core endpoint's serialised body, keyed by the project's version.

Each request reads the project's version (one primary-key lookup, see
:meth:`imstags.storage.database.Database.lookup`); the body is rebuilt only when another
transaction, in this process or any other, has bumped it. Reading the version before the rows
matters: a body built from rows newer than the version it is stored under is harmless (it is
rebuilt on the next request), while the reverse could serve stale data.
:class:`~imstags.services.tags.TagService` does the reading; this class only keeps bodies.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import orjson

from imstags.services import metrics


@dataclass(frozen=True)
class SummaryBody:
    version: int
    body: bytes
    etag: str


class SummaryCache:
    def __init__(self, max_projects: int = 1024) -> None:
        self._max = max_projects
        self._entries: OrderedDict[str, SummaryBody] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, project_id: str, version: int) -> SummaryBody | None:
        """The body stored under ``version``, if it is the one stored for the project."""
        # A lock-free read (one dict lookup is atomic): the hit is the hot path. Recency is
        # recorded when a body is built, so eviction drops the least recently rebuilt project.
        cached = self._entries.get(project_id)
        if cached is not None and cached.version == version:
            metrics.SUMMARY_HIT.inc()
            return cached
        metrics.SUMMARY_MISS.inc()
        return None

    def store(self, project_id: str, version: int, tags: list[dict[str, object]]) -> SummaryBody:
        """Serialise the project's summary and keep it under ``version`` (read before it)."""
        body = orjson.dumps({"tags": tags})
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        entry = SummaryBody(version, body, etag)
        metrics.SUMMARY_REBUILDS.inc()
        with self._lock:
            self._entries[project_id] = entry
            self._entries.move_to_end(project_id)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return entry
