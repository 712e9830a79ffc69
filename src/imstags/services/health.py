"""Readiness: the database answers, accepts writes, and its schema is at the newest migration.

A process whose database is gone is not ready (503), so a balancer stops sending it traffic
and sends it again, without any restart, once the database is back.
"""

from __future__ import annotations

import asyncio
import logging

from imstags.errors import ImsError, ServiceUnavailable
from imstags.services.threads import run_blocking
from imstags.storage.database import Database
from imstags.storage.errors import DATABASE_ERRORS
from imstags.storage.readiness import accepts_writes, schema_is_current

log = logging.getLogger(__name__)
_FAULTS: tuple[type[Exception], ...] = (*DATABASE_ERRORS, ImsError, OSError)


class HealthService:
    def __init__(self, db: Database, *, timeout: float = 5.0) -> None:
        self._db = db
        self._timeout = timeout
        self._checking: asyncio.Future[str | None] | None = None  # the check under way

    async def check_ready(self) -> None:
        """Returns when ready; ``ServiceUnavailable`` saying why, in one phrase, otherwise.

        Bounded by ``timeout`` even when the database is frozen and answers nothing. The
        check's thread is then left to its driver's own limits, so one check runs at a time:
        probes that arrive meanwhile wait for it rather than each holding a thread of the
        shared pool. A database that answers reads but refuses writes (disk full, a read-only
        standby after a fail-over) is not ready: every write would fail.
        """
        if self._checking is None or self._checking.done():
            self._checking = asyncio.ensure_future(run_blocking(self._check))
        try:
            problem = await asyncio.wait_for(asyncio.shield(self._checking), self._timeout)
        except TimeoutError as exc:
            log.warning("not ready: the database did not answer within %ss", self._timeout)
            raise ServiceUnavailable("Not ready: the database does not answer.") from exc
        if problem is not None:
            raise ServiceUnavailable(f"Not ready: {problem}.")

    def _check(self) -> str | None:
        """What is wrong, in one phrase, or None (on a thread of the shared pool)."""
        for check, failure in (
            (schema_is_current, "the database is unreachable"),
            (accepts_writes, "the database refuses writes"),
        ):
            try:
                if check(self._db) is False:
                    return "the database schema is not at the newest migration"
            except _FAULTS as exc:
                log.warning("not ready: database check failed: %s", type(exc).__name__)
                return failure
        return None
