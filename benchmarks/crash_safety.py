"""Crash safety: SIGKILL the server under concurrent writers, restart it, count what survived.

For each database (SQLite, and PostgreSQL with ``--postgres URL``) it runs ``--rounds`` rounds
on one fresh database: start ``imstags serve``, let ``--writers`` threads create images with
tags, overwrite a tag and delete images for ``--seconds``, kill the server with SIGKILL while
they write, restart it and check (see tests/support/crash.py): every acknowledged write is
there, no unanswered write is half there, the tag aggregate equals a full recount. Prints the
figures of each round and the totals; exit status 1 on any problem.

    .venv/bin/python -m benchmarks.crash_safety --rounds 3 --writers 8 --seconds 5 \\
        --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import uuid
from pathlib import Path

from cryptography.fernet import Fernet
from tests.support.crash import CrashReport, crash_round
from tests.support.databases import temporary_postgres_database

from imstags.domain.credentials import create_credential_tx
from imstags.domain.secrets import SecretBox
from imstags.settings import Settings
from imstags.storage.database import Database
from imstags.storage.migrate import upgrade


def run_on(name: str, database_url: str, workdir: Path, args: argparse.Namespace) -> CrashReport:
    key = Fernet.generate_key().decode()
    settings = Settings(database_url=database_url, data_dir=workdir, secret_key=key)
    upgrade(database_url)
    db = Database(database_url)
    total = CrashReport(aggregate_exact=True)
    try:
        for round_number in range(1, args.rounds + 1):
            project = uuid.uuid4().hex
            credential = db.write(lambda s, p=project: create_credential_tx(s, SecretBox(key), p))
            report = crash_round(
                settings,
                db,
                credential,
                writers=args.writers,
                seconds=args.seconds,
                log_dir=workdir,
            )
            print(f"{name} round {round_number}: {report.summary()}", flush=True)
            for problem in report.problems[:10]:
                print(f"  problem: {problem}")
            total.add(report)
    finally:
        db.dispose()
    print(f"{name} total: {total.summary()}\n", flush=True)
    return total


def main() -> int:
    # On SIGTERM unwind normally, so that the servers this script started are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="writing time before the kill")
    parser.add_argument("--postgres", help="PostgreSQL server URL: also run on PostgreSQL")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    problems = 0
    with tempfile.TemporaryDirectory(prefix="imstags-crash-") as tmp:
        if not args.no_sqlite:
            workdir = Path(tmp) / "sqlite"
            workdir.mkdir()
            report = run_on("SQLite", f"sqlite:///{workdir / 'imstags.db'}", workdir, args)
            problems += len(report.problems)
        if args.postgres:
            workdir = Path(tmp) / "postgres"
            workdir.mkdir()
            with temporary_postgres_database(args.postgres) as url:
                report = run_on("PostgreSQL", url, workdir, args)
            problems += len(report.problems)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
