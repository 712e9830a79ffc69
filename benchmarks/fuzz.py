"""The large fuzzing run: schemathesis against the real server on SQLite (and PostgreSQL).

For each database it starts ``imstags serve`` on a fresh database, makes an AK/SK credential
and fuzzes every operation of ``/openapi.json`` with ``--cases`` cases per operation (shared
between positive data, negative data and, for operations on an image, an existing image), each
request signed. It prints per-operation case counts and the totals: cases, status codes, 5xx,
hangs and check failures (responses that break the documented schema), then the first
failures. Exit status 1 if any 5xx, hang or check failure was seen.

    .venv/bin/python -m benchmarks.fuzz --cases 1000 \\
        --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

from cryptography.fernet import Fernet
from tests.support.databases import temporary_postgres_database
from tests.support.fuzzing import FuzzReport, fuzz
from tests.support.server import start_server

from imstags.domain.credentials import create_credential_tx
from imstags.domain.secrets import SecretBox
from imstags.settings import Settings
from imstags.storage.database import Database
from imstags.storage.migrate import upgrade


def run_on(database_url: str, workdir: Path, args: argparse.Namespace) -> FuzzReport:
    key = Fernet.generate_key().decode()
    settings = Settings(database_url=database_url, data_dir=workdir, secret_key=key)
    upgrade(database_url)
    db = Database(database_url)
    project = uuid.uuid4().hex
    credential = db.write(lambda s: create_credential_tx(s, SecretBox(key), project))
    db.dispose()
    with start_server(settings, workdir / "server.log", startup_timeout=180) as server:
        started = time.monotonic()
        report = fuzz(
            server.base_url,
            credential,
            cases_per_operation=args.cases,
            random_seed=args.seed,
            only=args.only,
            progress=lambda label: print(f"  {label}", file=sys.stderr, flush=True),
        )
        elapsed = time.monotonic() - started
        log = server.log()
    print(f"\n{report.summary()}")
    print("cases per operation:")
    for operation, count in sorted(report.per_operation().items()):
        print(f"  {count:>6}  {operation}")
    print(f"elapsed: {elapsed:.0f} s ({report.total / max(elapsed, 1e-9):.1f} cases/s)")
    tracebacks = log.count("Traceback")
    print(f"tracebacks in the server log: {tracebacks}")
    for failure in report.failures[:10]:
        print("----\n" + failure)
    return report


def main() -> int:
    # On SIGTERM unwind normally, so that the servers this script started are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000, help="cases per operation")
    parser.add_argument("--seed", type=int, default=20261129, help="random seed")
    parser.add_argument("--only", help="regular expression: fuzz only matching paths")
    parser.add_argument("--postgres", help="PostgreSQL server URL: also fuzz on PostgreSQL")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite run")
    args = parser.parse_args()
    bad = 0
    with tempfile.TemporaryDirectory(prefix="imstags-fuzz-") as tmp:
        if not args.no_sqlite:
            print("== SQLite ==", flush=True)
            workdir = Path(tmp) / "sqlite"
            workdir.mkdir()
            report = run_on(f"sqlite:///{workdir / 'imstags.db'}", workdir, args)
            bad += report.server_errors + report.hangs + report.failure_count
        if args.postgres:
            print("== PostgreSQL ==", flush=True)
            workdir = Path(tmp) / "postgres"
            workdir.mkdir()
            with temporary_postgres_database(args.postgres) as url:
                report = run_on(url, workdir, args)
            bad += report.server_errors + report.hangs + report.failure_count
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
