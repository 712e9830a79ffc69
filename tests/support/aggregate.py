"""The tag aggregate checked the way users check it: ``imstags db check``'s service."""

from __future__ import annotations

from imstags.services.consistency import ConsistencyService
from imstags.storage.database import Database


def assert_aggregate_exact(db: Database, project_id: str) -> None:
    """Every stored (key, value) count of the project equals a recount from its tags."""
    report = ConsistencyService(db).check(project_id)
    assert report.consistent, report.differences


def aggregate_is_exact(db: Database, project_id: str) -> bool:
    return ConsistencyService(db).check(project_id).consistent
