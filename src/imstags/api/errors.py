"""The one place where exceptions become HTTP error responses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from imstags.api.responses import JsonResponse, error_body
from imstags.errors import EmptyBody, ImsError

_HTTP_CODES = {
    404: ("IMG.0121", "The requested resource was not found."),
    405: ("IMG.0105", "The operation is not supported."),
    413: ("IMG.0001", "The request body is too large."),
}


def ims_error_response(exc: ImsError) -> JsonResponse:
    return JsonResponse(error_body(exc.code, exc.message), status_code=exc.status)


def _describe_validation(exc: RequestValidationError) -> ImsError:
    errors = exc.errors()
    for err in errors:
        if err.get("type") == "missing" and tuple(err.get("loc", ())) == ("body",):
            return EmptyBody()
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return ImsError("The request message format is invalid: " + "; ".join(parts))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ImsError)
    async def _ims(_request: Request, exc: ImsError) -> JsonResponse:
        return ims_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JsonResponse:
        return ims_error_response(_describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JsonResponse:
        code, message = _HTTP_CODES.get(exc.status_code, ("IMG.0001", str(exc.detail)))
        return JsonResponse(
            error_body(code, message), status_code=exc.status_code, headers=exc.headers
        )
