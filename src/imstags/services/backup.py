"""``imstags db backup``: a copy of the live database that a fresh data directory can start from.

SQLite: the online backup API (storage/backup.py), safe while the service runs. PostgreSQL:
its own ``pg_dump`` is the right tool (consistent snapshot, restorable with ``pg_restore``);
the command prints how to run it instead of re-implementing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imstags.settings import Settings
from imstags.storage.backup import (
    backup_sqlite,
    is_sqlite_url,
    pg_dump_command,
    pg_restore_command,
)


class BackupNeedsPgDump(Exception):
    """The database is PostgreSQL: the message says which pg_dump (and pg_restore) to run."""


@dataclass(frozen=True)
class BackupDone:
    target: Path
    size: int


def backup_database(settings: Settings, target: Path) -> BackupDone:
    url = settings.resolved_database_url
    if not is_sqlite_url(url):
        raise BackupNeedsPgDump(
            "The database is PostgreSQL; back it up with pg_dump (consistent while imstags "
            f"runs):\n  {pg_dump_command(url, target)}\n"
            "and restore it into an empty database with\n"
            f"  {pg_restore_command(target)}\n"
            "then run `imstags db upgrade` against it before starting the service."
        )
    size = backup_sqlite(url, target)
    return BackupDone(target, size)
