"""The tag write path's own connections (storage/driver_connections.py), on the test database:
reused when clean, never handed on inside a transaction, bounded in number; and the retry of
races that the driver, not SQLAlchemy, reports."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine

from imstags.errors import ServiceUnavailable
from imstags.storage import driver_connections
from imstags.storage.database import normalise_url
from imstags.storage.driver_connections import DriverConnections


@pytest.fixture
def connections(db):
    engine = create_engine(normalise_url(db.url))
    pool = DriverConnections(engine, keep=2, limit=2, timeout=0.2)
    yield pool
    pool.close()
    engine.dispose()


def _begin(connection) -> None:
    """Open a transaction the way the tag write path does on each database."""
    if hasattr(connection, "in_transaction") and not hasattr(connection, "info"):
        connection.execute("BEGIN")
    connection.execute("SELECT 1").fetchone()


def _rollback(connection) -> None:
    if hasattr(connection, "info"):
        connection.rollback()
    else:
        connection.execute("ROLLBACK")


def test_a_clean_connection_is_handed_out_again(connections):
    with connections.connection() as first:
        _begin(first)
        _rollback(first)
    with connections.connection() as second:
        assert second is first


def test_a_connection_left_inside_a_transaction_is_closed_not_reused(connections):
    with pytest.raises(RuntimeError), connections.connection() as first:
        _begin(first)
        raise RuntimeError("the work failed before its rollback")
    with connections.connection() as second:
        assert second is not first
        _begin(second)  # starts cleanly: no transaction was inherited
        _rollback(second)


def test_a_connection_idle_for_long_is_checked_before_use(connections, monkeypatch):
    with connections.connection() as first:
        pass
    monkeypatch.setattr(driver_connections, "PING_AFTER_IDLE_SECONDS", 0.0)
    with connections.connection() as again:
        assert again is first  # alive: kept
    first.close()  # as a lost server would leave it
    with connections.connection() as fresh:
        assert fresh is not first
        _begin(fresh)
        _rollback(fresh)


def test_connections_are_bounded_and_a_wait_ends_in_503(connections):
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with connections.connection():
            held.set()
            release.wait(5)

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for thread in holders:
        thread.start()
    held.wait(5)
    try:
        while sum(t.is_alive() for t in holders) < 2:
            pass
        with pytest.raises(ServiceUnavailable), connections.connection():
            pass
    finally:
        release.set()
        for thread in holders:
            thread.join()
    with connections.connection():  # a slot is free again
        pass


def _lost_race(db) -> BaseException:
    """What each database's driver raises for a race the transaction must be retried for."""
    if db.is_sqlite:
        import sqlite3

        return sqlite3.OperationalError("database is locked")
    from psycopg import errors

    return errors.DeadlockDetected("deadlock detected")


@pytest.mark.parametrize("path", ["write", "write_tags"])
def test_a_race_lost_in_driver_statements_is_retried_whole(db, path):
    """Tag statements run on the driver connection, also inside ORM transactions (image
    create, PATCH, delete), so a lost race arrives as the driver's own error: both kinds of
    transaction must retry it like SQLAlchemy's."""
    calls = []

    def work(_handle):
        calls.append(1)
        if len(calls) == 1:
            raise _lost_race(db)
        return "done"

    assert getattr(db, path)(work) == "done"
    assert len(calls) == 2


def test_a_driver_error_that_is_not_a_race_is_not_retried(db):
    calls = []

    def work(_session):
        calls.append(1)
        raise db._driver_errors.IntegrityError("not a race")

    with pytest.raises(db._driver_errors.IntegrityError):
        db.write(work)
    assert len(calls) == 1
