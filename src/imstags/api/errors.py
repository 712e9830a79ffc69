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

    async def _database(_request: Request, exc: Exception) -> JsonResponse:
        return ims_error_response(classify_database_error(exc))

    for error_class in DATABASE_ERRORS:
        app.add_exception_handler(error_class, _database)

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
