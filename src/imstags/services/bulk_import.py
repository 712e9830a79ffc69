"""``imstags images import``: batches of parsed lines written one transaction each.

The rules (the line format, the tag rules, what rejects a batch) are in
:mod:`imstags.domain.bulk_import`; this is the use case around them: the transactions, the
progress and, after a load, fresh planner statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from imstags.domain.bulk_import import (
    DEFAULT_BATCH_SIZE,
    BatchRejected,
    ImportReport,
    read_batches,
    write_batch,
)
from imstags.storage.database import Database


class ImportService:
    def __init__(self, db: Database) -> None:
        self._db = db

    def import_lines(
        self,
        lines: Iterable[bytes | str],
        *,
        default_project_id: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        on_progress: Callable[[int], Any] | None = None,
    ) -> ImportReport:
        """Import JSON lines in batches; stops at the first batch with a bad line, and
        leaves the batches before it committed."""
        report = ImportReport()
        for batch in read_batches(
            lines, default_project_id=default_project_id, batch_size=batch_size
        ):
            if batch.errors:
                report.errors.extend(batch.errors)
                break
            if batch.lines:
                try:
                    images, tags = self._db.write(partial(write_batch, batch=batch.lines))
                except BatchRejected as rejected:
                    report.errors.extend(rejected.errors)
                    break
                report.images += images
                report.tags += tags
            if on_progress is not None:
                on_progress(batch.last_line - report.lines_committed)
            report.lines_committed = batch.last_line
        if report.images:
            # Without statistics, PostgreSQL planned a page of a hundred images as a scan of
            # the whole tag table.
            self._db.refresh_statistics()
        return report
