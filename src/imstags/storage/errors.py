"""What a database error means for the client: the one place that knows the database errors.

The HTTP layer registers :data:`DATABASE_ERRORS` with its error handler and answers what
:func:`classify_database_error` returns, so it needs neither SQLAlchemy nor the drivers.

Every error of SQLAlchemy and of the three drivers (sqlite3, psycopg, asyncpg) lands here, the
raw driver errors too: the tag write path runs on bare driver connections, so its errors are
the driver's own. Only two kinds are the client's fault: a value the database cannot store
(400) and a constraint violation (409). Everything else is a fault a retry may cure, or that
an operator must: 503 ``IMG.0061``, never 500. That includes a disk full or failing under
SQLite, a PostgreSQL that turned read-only (a fail-over to a standby), a statement or lock
wait cut by ``statement_timeout``/``lock_timeout``, lost connections and exhausted pools.
"""

from __future__ import annotations

import logging
import sqlite3

import asyncpg
import psycopg
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from imstags.errors import AttributeConflict, BadRequest, ImsError, ServiceUnavailable

log = logging.getLogger(__name__)

# Every error a request may meet from the database, by whichever door it came.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    SQLAlchemyError,
    sqlite3.Error,
    psycopg.Error,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)

# SQLSTATE classes (the first two characters) that name the client's value, not a fault.
_PG_DATA_EXCEPTION = "22"
_PG_INTEGRITY_VIOLATION = "23"
_PG_READ_ONLY = "25006"  # read_only_sql_transaction: a standby, or a primary turned read-only
_PG_CANCELLED = {"57014", "55P03"}  # statement_timeout / lock_timeout (lock_not_available)


def classify_database_error(exc: Exception) -> ImsError:
    """Safety net for database errors: 400, 409 or 503, never a 500.

    A value the database refuses (too long for its column, NUL in text, out of range) is the
    client's 400; a constraint violation is a 409 conflict; anything else is 503 with a phrase
    saying which fault. The log gets the error class and first line only (no SQL parameters,
    which may hold client data).
    """
    orig: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc
    first_line = (str(orig).splitlines() or [""])[0]
    log.warning("database refused a request: %s: %s", type(orig).__name__, first_line)
    if isinstance(orig, sqlite3.Error):
        return _classify_sqlite(orig)
    sqlstate = getattr(orig, "sqlstate", None) or ""
    if sqlstate.startswith(_PG_DATA_EXCEPTION):
        return BadRequest("A value in the request cannot be stored (wrong type or too long).")
    if sqlstate.startswith(_PG_INTEGRITY_VIOLATION):
        return AttributeConflict("The request conflicts with existing data.")
    if sqlstate == _PG_READ_ONLY:
        return ServiceUnavailable("The database accepts no writes at the moment; try again.")
    if sqlstate in _PG_CANCELLED:
        return ServiceUnavailable("The database did not answer in time; try again.")
    return ServiceUnavailable("The database is busy or unavailable; try again.")


def _classify_sqlite(orig: sqlite3.Error) -> ImsError:
    if isinstance(orig, sqlite3.DataError):
        return BadRequest("A value in the request cannot be stored (wrong type or too long).")
    if isinstance(orig, sqlite3.IntegrityError):
        return AttributeConflict("The request conflicts with existing data.")
    text = str(orig).lower()
    if "disk" in text or "full" in text or "readonly" in text or "read-only" in text:
        return ServiceUnavailable("The database cannot store data (disk full or failing).")
    return ServiceUnavailable("The database is busy or unavailable; try again.")
