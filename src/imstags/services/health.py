"""Readiness: the database answers and its schema is at the newest migration.

A process whose database is gone is not ready (503), so a balancer stops sending it traffic
and sends it again, without any restart, once the database is back.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from imstags.errors import ImsError, ServiceUnavailable
from imstags.services.threads import run_blocking
from imstags.storage.database import Database
from imstags.storage.readiness import schema_is_current

log = logging.getLogger(__name__)


class HealthService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def check_ready(self) -> None:
        """Returns when ready; ``ServiceUnavailable`` saying why, in one phrase, otherwise.

        Bounded in time by the database's connect timeout (see ``storage/database.py``).
        """
        try:
            current = await run_blocking(schema_is_current, self._db)
        except (SQLAlchemyError, ImsError, OSError) as exc:
            log.warning("not ready: database check failed: %s", type(exc).__name__)
            raise ServiceUnavailable("Not ready: the database is unreachable.") from exc
        if not current:
            raise ServiceUnavailable(
                "Not ready: the database schema is not at the newest migration."
            )
