"""The errors the service reports: one class per IMS error code, each with its HTTP status.

Every layer raises these; one place (``imstags.api.errors``) turns any of them into
``{"error": {"code": ..., "message": ...}}`` and the CLI prints their message. A class fixes its
code and status: a raise site chooses the class, and at most a more precise message, never
another code. Codes and default messages follow the reference's ``error_codes.rst``. Where the
reference's API pages answer a condition with another status than the table's 400 (a missing
image is 404 on every tag page), the page's status wins and the code is kept; each such
departure is listed in docs/decisions.md ("Error classes"), and ``tests/test_error_classes.py``
checks every class against both documents.
"""

from __future__ import annotations

from typing import ClassVar


class ImsError(Exception):
    """Base of every error answered to a client. Not raised itself."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "IMG.0001"
    message: str = "The request message format is invalid."

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)


# --- 400: the request is wrong ---------------------------------------------------------------


class BadRequest(ImsError):
    """Malformed body, wrong types, missing fields, values outside their rules (IMG.0001)."""


class ImageNameTooLong(ImsError):
    code = "IMG.0002"
    message = "The image name contains more than 128 characters."


class InvalidImageName(ImsError):
    code = "IMG.0003"
    message = "The image name format is invalid."


class DescriptionTooLong(ImsError):
    code = "IMG.0004"
    message = "The description contains more than 1024 characters."


class EmptyBody(ImsError):
    code = "IMG.0007"
    message = "The request body is empty."


class ImageNameMissing(ImsError):
    code = "IMG.0013"
    message = "The image name is not specified."


class InvalidImageType(ImsError):
    code = "IMG.0024"
    message = "The image type in the request is incorrect."


class ImageProtected(ImsError):
    code = "IMG.0028"
    message = "The image in the request is protected."


class AttributeConflict(ImsError):
    """The change contradicts what is stored: an image id already taken, a patch that removes
    what is not there, a constraint the database enforces (IMG.0035)."""

    code = "IMG.0035"
    message = "An attribute conflict occurred during the modification."


class ImageStatusConflict(AttributeConflict):
    """The image's status forbids the change (a second upload to an active image): 409, as
    the upload page and Glance answer it."""

    status = 409
    message = "The image's status does not allow this operation."


class ImageUnavailable(ImsError):
    """A deactivated image's data: Glance forbids its download (403)."""

    status = 403
    code = "IMG.0046"
    message = "The image is unavailable."


class InvalidDescription(ImsError):
    code = "IMG.0054"
    message = "The image description format is invalid."


class InvalidSize(ImsError):
    code = "IMG.0055"
    message = "The memory or disk size is invalid."


class InvalidImageId(ImsError):
    code = "IMG.0066"
    message = "The image ID is incorrect."


class InvalidProjectId(ImsError):
    code = "IMG.0067"
    message = "The project ID is incorrect."


class UnsupportedDiskFormat(ImsError):
    code = "IMG.0072"
    message = "The specified image format is not supported."


class NotSupported(ImsError):
    """An operation of the reference that imstags does not perform (sharing, import...)."""

    code = "IMG.0105"
    message = "The operation is not supported."


class MethodNotAllowed(NotSupported):
    """A known path with a method it does not serve: the same code, HTTP's own status."""

    status = 405


class InvalidTag(ImsError):
    code = "IMG.0115"
    message = "The image tag is invalid."


class TagQuotaExceeded(ImsError):
    code = "IMG.0116"
    message = "The number of image tags exceeds the quota."


class InvalidOsType(ImsError):
    code = "IMG.0122"
    message = "The OS type is invalid."


class InvalidFirmwareType(ImsError):
    code = "IMG.0141"
    message = "The value of hw_firmware_type is not uefi or bios."


# --- 401 / 403: who is asking ----------------------------------------------------------------


class Unauthorized(ImsError):
    status = 401
    code = "IMG.0030"
    message = "The project ID and token in the request are invalid."


class Forbidden(ImsError):
    status = 403
    code = "IMG.0026"
    message = "You do not have the rights to perform the operation."


# --- 404: what is asked for is not there -----------------------------------------------------


class NotFound(ImsError):
    status = 404
    code = "IMG.0121"
    message = "The object cannot be found."


class ImageNotFound(ImsError):
    status = 404
    code = "IMG.0144"
    message = "The image does not exist."


class TagNotFound(InvalidTag):
    """The reference has no not-found code for tags; IMG.0115 is its tag code."""

    status = 404
    message = "The image tag does not exist."


# --- 413, 429, 5xx ---------------------------------------------------------------------------


class BodyTooLarge(BadRequest):
    status = 413
    message = "The request body is too large."


class ImageFileTooLarge(ImsError):
    """Image data beyond ``max_image_bytes``: refused (413) as soon as it passes the limit."""

    status = 413
    code = "IMG.0059"
    message = "The size of the image file exceeds the maximum allowed."


class RangeNotSatisfiable(BadRequest):
    """A download's ``Range`` starts past the end of the data: 416, with the data's size."""

    status = 416
    message = "The requested range is not satisfiable."

    def __init__(self, size: int) -> None:
        super().__init__(f"The requested range is not satisfiable: the data has {size} bytes.")
        self.headers = {"Content-Range": f"bytes */{size}"}


class TooManyRequests(ImsError):
    """Too many attempts (login throttling, a full queue); ``retry_after`` seconds to wait."""

    status = 429
    code = "IMG.0060"
    message = "Too many failed attempts; try again later."

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class InternalError(ImsError):
    """An unexpected failure; the body names the request id, the log has the traceback."""

    status = 500
    code = "IMG.0061"
    message = "Unknown system error."


class ServiceUnavailable(InternalError):
    """A fault that a retry may cure: the database unreachable, busy or refusing writes."""

    status = 503
    message = "The service is unavailable."
