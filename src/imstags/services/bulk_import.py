"""``imstags images import``: batches of parsed lines written one transaction each.

The rules (the line format, the tag rules, what rejects a batch) are in
:mod:`imstags.domain.bulk_import`; this is the use case around them: the transactions, the
progress, the indexes of a first load and, after a load, fresh planner statistics.

Two cores do the work of a load: this process parses lines and encodes rows, the database
server stores them. Lines are parsed one batch ahead on a thread of their own, so that the
next batch is read while the database takes the one before (the writes wait on the socket,
which releases the interpreter's lock).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, TypeVar

from imstags.domain.bulk_import import (
    DEFAULT_BATCH_SIZE,
    BatchRejected,
    ImportBatch,
    ImportReport,
    read_batches,
    write_batch,
)
from imstags.storage.database import Database
from imstags.storage.load_indexes import load_indexes

T = TypeVar("T")
# Batches parsed ahead of the one being written: one keeps both cores busy; more would only
# hold more lines in memory.
PARSED_AHEAD = 1


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
        on_stage: Callable[[str], Any] | None = None,
    ) -> ImportReport:
        """Import JSON lines in batches; stops at the first batch with a bad line, and
        leaves the batches before it committed.

        Into an empty database (PostgreSQL) the tag tables' indexes are dropped first and
        built after the last batch (:mod:`imstags.storage.load_indexes`); ``on_stage`` hears
        when that begins. If this process dies during the load, the next ``imstags`` command
        builds them.
        """
        tell = on_stage or (lambda _message: None)
        with load_indexes(self._db.engine) as indexes:
            indexes.rebuild_missing()  # what a load that died left behind
            deferred = indexes.drop_if_empty()
            if deferred:
                tell(f"empty database: indexes built after the load ({', '.join(deferred)})")
            try:
                report = self._load(lines, default_project_id, batch_size, on_progress)
            except Exception:
                # A database error or a bug stops the load; the indexes are still owed. (An
                # interrupt leaves them to the next command rather than make Ctrl-C wait.)
                with contextlib.suppress(Exception):
                    indexes.rebuild_missing()
                raise
            if indexes.held and indexes.missing():
                tell("building indexes")
                indexes.rebuild_missing()
            if report.images or deferred:
                # Without statistics, PostgreSQL planned a page of a hundred images as a scan
                # of the whole tag table; and without a vacuum, index-only scans are not.
                tell("vacuuming and analyzing")
                if not indexes.vacuum_analyze():
                    self._db.refresh_statistics()
        return report

    def _load(
        self,
        lines: Iterable[bytes | str],
        default_project_id: str | None,
        batch_size: int,
        on_progress: Callable[[int], Any] | None,
    ) -> ImportReport:
        report = ImportReport()
        batches = read_batches(lines, default_project_id=default_project_id, batch_size=batch_size)
        with parsed_ahead(batches, PARSED_AHEAD) as ahead:
            for batch in ahead:
                if not self._write(batch, report):
                    break
                if on_progress is not None:
                    on_progress(batch.last_line - report.lines_committed)
                report.lines_committed = batch.last_line
        return report

    def _write(self, batch: ImportBatch, report: ImportReport) -> bool:
        """Write one batch; False (and the reasons in ``report``) if it has bad lines."""
        if batch.errors:
            report.errors.extend(batch.errors)
            return False
        if batch.lines:
            try:
                images, tags = self._db.write(partial(write_batch, batch=batch.lines))
            except BatchRejected as rejected:
                report.errors.extend(rejected.errors)
                return False
            report.images += images
            report.tags += tags
        return True


@contextlib.contextmanager
def parsed_ahead(items: Iterator[T], depth: int) -> Iterator[Iterator[T]]:
    """``items``, produced on a thread of their own up to ``depth`` ahead of the consumer.

    An exception of the producer is raised to the consumer in its place; a consumer that
    stops early stops the producer at its next item.
    """
    ready: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(entry: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                ready.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, done))
        except BaseException as exc:  # handed to the consumer, raised there
            put((False, exc))

    def consume() -> Iterator[T]:
        while True:
            ok, item = ready.get()
            if not ok:
                raise item
            if item is done:
                return
            yield item

    producer = threading.Thread(target=produce, name="import-parser", daemon=True)
    producer.start()
    try:
        yield consume()
    finally:
        stop.set()
        producer.join()
