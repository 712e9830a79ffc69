"""The one place where exceptions become HTTP error responses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from imstags.api.responses import JsonResponse, error_body
from imstags.errors import (
    BadRequest,
    BodyTooLarge,
    EmptyBody,
    ImsError,
    MethodNotAllowed,
    NotFound,
)
from imstags.storage.errors import DATABASE_ERRORS, classify_database_error

# What the framework's own refusals become (unknown path, method, body size).
_HTTP_ERRORS: dict[int, ImsError] = {
    404: NotFound("The requested resource was not found."),
    405: MethodNotAllowed(),
    413: BodyTooLarge(),
}


def ims_error_response(exc: ImsError) -> JsonResponse:
    headers = getattr(exc, "headers", None)
    return JsonResponse(error_body(exc.code, exc.message), status_code=exc.status, headers=headers)


def error_response(exc: Exception) -> JsonResponse | None:
    """The answer to an exception a handler let out: an ``ImsError`` as it is, a database error
    as :func:`classify_database_error` names it; None for anything else (a bug: a 500). The
    framework's handlers and the lean path (:mod:`imstags.api.hot_routes`) both answer
    through here."""
    if isinstance(exc, ImsError):
        return ims_error_response(exc)
    if isinstance(exc, DATABASE_ERRORS):
        return ims_error_response(classify_database_error(exc))
    return None


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
    async def _answered(_request: Request, exc: Exception) -> JsonResponse:
        response = error_response(exc)
        if response is None:  # registered only for the classes error_response answers
            raise exc
        return response

    answered: tuple[type[Exception], ...] = (ImsError, *DATABASE_ERRORS)
    for error_class in answered:
        app.add_exception_handler(error_class, _answered)

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
