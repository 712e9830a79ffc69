"""Readiness: the database answers, accepts writes, and its schema is at the newest migration.

A process whose database is gone is not ready (503), so a balancer stops sending it traffic
and sends it again, without any restart, once the database is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from imstags.errors import ImsError, ServiceUnavailable
from imstags.services.threads import run_blocking
from imstags.storage.database import Database
from imstags.storage.errors import DATABASE_ERRORS
from imstags.storage.readiness import accepts_writes, schema_is_current

log = logging.getLogger(__name__)
T = TypeVar("T")
_FAULTS: tuple[type[Exception], ...] = (*DATABASE_ERRORS, ImsError, OSError)


class HealthService:
    def __init__(self, db: Database, *, timeout: float = 5.0) -> None:
        self._db = db
        self._timeout = timeout

    async def check_ready(self) -> None:
        """Returns when ready; ``ServiceUnavailable`` saying why, in one phrase, otherwise.

        Bounded by ``timeout`` even when the database is frozen and answers nothing (the
        probe's thread is left to its driver's own limits). A database that answers reads
        but refuses writes (disk full, a read-only standby after a fail-over) is not ready:
        every write would fail.
        """
        current = await self._bounded(schema_is_current, "is unreachable")
        await self._bounded(accepts_writes, "refuses writes")
        if not current:
            raise ServiceUnavailable(
                "Not ready: the database schema is not at the newest migration."
            )

    async def _bounded(self, check: Callable[[Database], T], failure: str) -> T:
        try:
            return await asyncio.wait_for(run_blocking(check, self._db), self._timeout)
        except TimeoutError as exc:
            log.warning("not ready: the database did not answer within %ss", self._timeout)
            raise ServiceUnavailable("Not ready: the database does not answer.") from exc
        except _FAULTS as exc:
            log.warning("not ready: database check failed: %s", type(exc).__name__)
            raise ServiceUnavailable(f"Not ready: the database {failure}.") from exc
