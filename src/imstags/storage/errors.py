"""What a database error means for the client: the one place that knows SQLAlchemy's errors.

The HTTP layer registers :data:`DATABASE_ERRORS` with its error handler and answers what
:func:`classify_database_error` returns, so it needs neither SQLAlchemy nor the driver.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError

from imstags.errors import AttributeConflict, BadRequest, ImsError, ServiceUnavailable

log = logging.getLogger(__name__)

# The errors a request may meet when validation let through what the database refuses.
DATABASE_ERRORS: tuple[type[Exception], ...] = (DataError, IntegrityError, OperationalError)


def classify_database_error(exc: Exception) -> ImsError:
    """Safety net for database errors that validation should have prevented.

    A value the database refuses (too long for its column, NUL in text, out of range) is the
    client's 400; a constraint violation is a 409 conflict; a lock that stays taken past every
    retry, or a database that went away mid-request, is 503. Never a 500, and the log gets the
    error class and first line only (no SQL parameters, which may hold client data).
    """
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    first_line = str(orig).splitlines()[0] if orig is not None else ""
    log.warning("database refused a request: %s: %s", type(orig).__name__, first_line)
    if isinstance(exc, DataError):
        return BadRequest("A value in the request cannot be stored (wrong type or too long).")
    if isinstance(exc, IntegrityError):
        return AttributeConflict("The request conflicts with existing data.")
    return ServiceUnavailable("The database is busy or unavailable; try again.")
