"""Throw-away databases of the kind the suite runs on (SQLite, or PostgreSQL when
``IMSTAGS_TEST_DATABASE_URL`` names a server)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from imstags.storage.database import normalise_url

TEST_DATABASE_ENV = "IMSTAGS_TEST_DATABASE_URL"


@contextmanager
def empty_test_database(sqlite_dir: Path) -> Iterator[str]:
    """The URL of a new, empty database: a file in ``sqlite_dir``, or a database created on
    the PostgreSQL server of ``IMSTAGS_TEST_DATABASE_URL`` and dropped afterwards."""
    server_url = os.environ.get(TEST_DATABASE_ENV)
    if server_url:
        with temporary_postgres_database(server_url) as url:
            yield url
    else:
        yield f"sqlite:///{sqlite_dir / 'imstags.db'}"


@contextmanager
def temporary_postgres_database(server_url: str) -> Iterator[str]:
    """Create ``imstags_test_<random>`` on the server of ``server_url``; drop it afterwards."""
    admin_url = make_url(normalise_url(server_url))
    name = f"imstags_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
