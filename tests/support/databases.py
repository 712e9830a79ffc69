"""A throw-away PostgreSQL database per test session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from imstags.storage.database import normalise_url


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
