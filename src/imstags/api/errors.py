"""The one place where exceptions become HTTP error responses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from imstags.api.responses import JsonResponse, error_body
from imstags.errors import (
    AttributeConflict,
    BadRequest,
    BodyTooLarge,
    EmptyBody,
    ImsError,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
)

log = logging.getLogger(__name__)

# What the framework's own refusals become (unknown path, method, body size).
_HTTP_ERRORS: dict[int, ImsError] = {
    404: NotFound("The requested resource was not found."),
    405: MethodNotAllowed(),
    413: BodyTooLarge(),
}


def ims_error_response(exc: ImsError) -> JsonResponse:
    headers = getattr(exc, "headers", None)
    return JsonResponse(error_body(exc.code, exc.message), status_code=exc.status, headers=headers)


def _database_error(exc: DBAPIError) -> ImsError:
    """Safety net for database errors that validation should have prevented.

    A value the database refuses (too long for its column, NUL in text, out of range) is the
    client's 400; a constraint violation is a 409 conflict; a lock that stays taken past every
    retry, or a database that went away mid-request, is 503. Never a 500, and the log gets the
    error class and first line only (no SQL parameters, which may hold client data).
    """
    first_line = str(exc.orig).splitlines()[0] if exc.orig is not None else ""
    log.warning("database refused a request: %s: %s", type(exc.orig).__name__, first_line)
    if isinstance(exc, DataError):
        return BadRequest("A value in the request cannot be stored (wrong type or too long).")
    if isinstance(exc, IntegrityError):
        return AttributeConflict("The request conflicts with existing data.")
    return ServiceUnavailable("The database is busy or unavailable; try again.")


def _describe_validation(exc: RequestValidationError) -> ImsError:
    errors = exc.errors()
    for err in errors:
        if err.get("type") == "missing" and tuple(err.get("loc", ())) == ("body",):
            return EmptyBody()
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return BadRequest("The request message format is invalid: " + "; ".join(parts))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ImsError)
    async def _ims(_request: Request, exc: ImsError) -> JsonResponse:
        return ims_error_response(exc)

    @app.exception_handler(DataError)
    @app.exception_handler(IntegrityError)
    @app.exception_handler(OperationalError)
    async def _database(_request: Request, exc: DBAPIError) -> JsonResponse:
        return ims_error_response(_database_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JsonResponse:
        return ims_error_response(_describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JsonResponse:
        known = _HTTP_ERRORS.get(exc.status_code)
        code, message = (known.code, known.message) if known else (BadRequest.code, str(exc.detail))
        return JsonResponse(
            error_body(code, message), status_code=exc.status_code, headers=exc.headers
        )
