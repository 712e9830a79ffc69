"""The errors the service reports, each carrying its HTTP status and IMS error code.

The domain layer raises these; one handler in ``imstags.api.errors`` turns any of them into
``{"error": {"code": ..., "message": ...}}``. Codes and messages follow the reference's
error_codes.rst; where the reference gives a 400 code for a condition its API pages answer
with another status (a missing image is 404 on every tag page), the page's status wins and the
code is kept (see docs/decisions.md).
"""

from __future__ import annotations


class ImsError(Exception):
    status: int = 400
    code: str = "IMG.0001"
    message: str = "The request message format is invalid."

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        if message is not None:
            self.message = message
        if code is not None:
            self.code = code
        super().__init__(self.message)


class BadRequest(ImsError):
    """Malformed body, wrong types, missing fields (IMG.0001)."""


class EmptyBody(BadRequest):
    code = "IMG.0007"
    message = "The request body is empty."


class InvalidTag(BadRequest):
    code = "IMG.0115"
    message = "The image tag is invalid."


class TagQuotaExceeded(BadRequest):
    code = "IMG.0116"
    message = "The number of image tags exceeds the quota."


class InvalidImageId(BadRequest):
    code = "IMG.0066"
    message = "The image ID is incorrect."


class ImageProtected(BadRequest):
    code = "IMG.0028"
    message = "The image in the request is protected."


class NotSupported(BadRequest):
    """An operation of the reference that imstags does not perform (image data, sharing)."""

    code = "IMG.0105"
    message = "The operation is not supported."


class Unauthorized(ImsError):
    status = 401
    code = "IMG.0030"
    message = "The project ID and token in the request are invalid."


class Forbidden(ImsError):
    status = 403
    code = "IMG.0026"
    message = "You do not have the rights to perform the operation."


class NotFound(ImsError):
    status = 404
    code = "IMG.0121"
    message = "The object cannot be found."


class ImageNotFound(NotFound):
    code = "IMG.0144"
    message = "The image does not exist."


class TagNotFound(NotFound):
    code = "IMG.0115"
    message = "The image tag does not exist."


class Conflict(ImsError):
    status = 409
    code = "IMG.0035"
    message = "An attribute conflict occurred during the modification."


class PayloadTooLarge(ImsError):
    status = 413
    code = "IMG.0001"
    message = "The request body is too large."


class ServiceUnavailable(ImsError):
    status = 503
    code = "IMG.0061"
    message = "The service is unavailable."


class TooManyRequests(ImsError):
    """Too many failed attempts (login throttling); ``retry_after`` seconds to wait."""

    status = 429
    code = "IMG.0060"
    message = "Too many failed attempts; try again later."

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}
