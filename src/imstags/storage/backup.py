"""A consistent copy of a live SQLite database (SQLite's online backup API).

The backup API copies the database page by page under SQLite's own locking: readers and
writers of the live file go on, and the copy is one consistent state of it, WAL included. The
copy is written to a temporary file beside the target and renamed into place, so a failed or
interrupted backup never leaves a half-written file under the target's name.
PostgreSQL has its own tool for this (``pg_dump``); :func:`pg_dump_command` says how to run it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from imstags.storage.database import normalise_url

PAGES_PER_STEP = 4096  # ~16 MiB at the default page size: writers get the lock in between


def is_sqlite_url(url: str) -> bool:
    return make_url(normalise_url(url)).get_backend_name() == "sqlite"


def backup_sqlite(url: str, target: Path) -> int:
    """Copy the SQLite database at ``url`` to ``target``; returns the copy's size in bytes."""
    source_path = make_url(normalise_url(url)).database
    if not source_path or source_path == ":memory:":
        raise ValueError("an in-memory SQLite database cannot be backed up")
    if not Path(source_path).exists():
        raise FileNotFoundError(f"no SQLite database at {source_path}")
    target = target.resolve()
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy, pages=PAGES_PER_STEP)
            # The copy stands alone: one file, no WAL beside it.
            copy.execute("PRAGMA journal_mode=DELETE")
        finally:
            copy.close()
        os.replace(partial, target)
    finally:
        source.close()
        partial.unlink(missing_ok=True)
    return target.stat().st_size


def pg_dump_command(url: str, target: Path) -> str:
    """The pg_dump invocation that backs up this PostgreSQL database (password left out)."""
    parsed = make_url(normalise_url(url)).set(drivername="postgresql", password=None)
    return (
        f"pg_dump --format=custom --no-owner --no-privileges "
        f"--dbname='{parsed.render_as_string(hide_password=True)}' --file='{target}'"
    )


def pg_restore_command(target: Path) -> str:
    return (
        "pg_restore --no-owner --no-privileges --exit-on-error "
        f"--dbname='postgresql://USER@HOST/EMPTY_DATABASE' '{target}'"
    )
