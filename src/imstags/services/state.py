"""Seed, export and reset: the known state that tests start from (``imstags seed``, the admin
API). The rules are in :mod:`imstags.domain.state`; here are the transactions and threads."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from imstags.domain.secrets import SecretBox
from imstags.domain.state import (
    SeedReport,
    export_project,
    known_projects,
    reset_project_tx,
    seed_tx,
)
from imstags.services.threads import run_blocking
from imstags.services.writes import WriteRunner
from imstags.storage.database import Database


class StateService:
    def __init__(self, db: Database, box: SecretBox, writes: WriteRunner | None = None) -> None:
        self._db = db
        self._box = box
        self._writes = writes

    # --- the command line (no event loop) ---

    def seed(self, document: object) -> SeedReport:
        """The whole document in one transaction, or nothing of it."""
        return self._db.write(lambda s: seed_tx(s, self._box, document))

    def export(self, project_id: str) -> dict[str, Any]:
        with self._db.read() as session:
            return export_project(session, self._box, project_id)

    def reset(self, project_id: str | None = None) -> list[str]:
        """Empty one project, or every project; returns the projects emptied."""
        return self._db.write(lambda s: _reset_tx(s, project_id))

    # --- the admin API ---

    async def seed_async(self, document: object) -> SeedReport:
        return await self._runner().run(self.seed, document)

    async def export_async(self, project_id: str) -> dict[str, Any]:
        return await run_blocking(self.export, project_id)

    async def reset_async(self, project_id: str | None = None) -> list[str]:
        return await self._runner().run(self.reset, project_id)

    def _runner(self) -> WriteRunner:
        if self._writes is None:
            raise RuntimeError("StateService built without writer threads")
        return self._writes


def _reset_tx(session: Session, project_id: str | None) -> list[str]:
    projects = [project_id] if project_id is not None else known_projects(session)
    for project in projects:
        reset_project_tx(session, project)
    return projects
