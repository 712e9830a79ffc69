"""``imstags db check``: is the tag aggregate behind the core endpoint exact, and its repair.

Every tag write keeps ``tag_counts`` exact in the same transaction as the tags; this is the
independent check of that promise (after a crash, a restore, a hand edit of the database, and
in the tests after every kind of write), and the way back when it was broken.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from imstags.storage.aggregate_check import (
    TagCountRow,
    compare_tag_counts,
    lock_tag_tables,
    rewrite_tag_counts,
)
from imstags.storage.database import Database


@dataclass
class AggregateReport:
    """What a check compared, and every (project, key, value) whose stored count was wrong."""

    projects: int = 0
    pairs: int = 0
    differences: list[TagCountRow] = field(default_factory=list)
    repaired: bool = False

    @property
    def consistent(self) -> bool:
        return not self.differences


class ConsistencyService:
    """Plain ``def`` methods: the command line calls them (and the tests, after writes)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def check(self, project_id: str | None = None) -> AggregateReport:
        """Compare the aggregate of one project (or of all) with a recount. Read-only and
        lock-free: safe on a live database."""
        with self._db.read() as session:
            return _report(compare_tag_counts(session, project_id))

    def repair(self, project_id: str | None = None) -> AggregateReport:
        """:meth:`check`, then every wrong count rewritten with its recount, all in one write
        transaction that tag writers wait for. The report shows what was wrong before."""

        def work(session: Session) -> AggregateReport:
            lock_tag_tables(session)
            report = _report(compare_tag_counts(session, project_id))
            rewrite_tag_counts(session, report.differences)
            report.repaired = not report.consistent
            return report

        return self._db.write(work)


def _report(rows: Iterable[TagCountRow]) -> AggregateReport:
    report = AggregateReport()
    projects: set[str] = set()
    for row in rows:
        report.pairs += 1
        projects.add(row.project_id)
        if not row.exact:
            report.differences.append(row)
    report.projects = len(projects)
    return report
