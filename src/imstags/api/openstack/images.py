"""Native OpenStack images: ``/v2/images`` and ``/v2/images/{image_id}``.

Reference chapter: native_openstack_apis/image_native_openstack_apis. imstags keeps image
metadata and data: an image is created ``queued`` and becomes ``active`` once its data is
uploaded (the data routes are further down). Staging and import answer 400 ``IMG.0105``, and
so do the sharing (members) routes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from imstags.api.deps import ImageDataDep, ImagesDep
from imstags.api.faults import status_fault
from imstags.api.openstack.documents import ImageDocument, render_image
from imstags.api.openstack.schemas import image_schema
from imstags.api.responses import ERROR_RESPONSES, JsonResponse, no_content
from imstags.api.security import Authenticated, StreamedBodyAuthenticated
from imstags.domain.images.listing import NATIVE_DEFAULT_PAGE_SIZE
from imstags.domain.images.patch import OPS, parse_operations
from imstags.domain.images.records import parse_create_body
from imstags.errors import BadRequest, EmptyBody, NotSupported

router = APIRouter(tags=["Images (native OpenStack)"])
_BINARY = {"type": "string", "format": "binary"}

PATCH_MEDIA_TYPES = (
    "application/openstack-images-v2.1-json-patch",
    "application/openstack-images-v2.0-json-patch",
)


PATCH_OPERATION_SCHEMA = {
    "type": "object",
    "properties": {
        "op": {"type": "string", "enum": list(OPS)},
        "path": {"type": "string", "pattern": "^/.+"},
        "value": {},
    },
    "required": ["op", "path"],
}


class ImageList(BaseModel):
    images: list[ImageDocument]
    schema_: str | None = None
    first: str | None = None
    next: str | None = None

    model_config = {"populate_by_name": True, "json_schema_extra": {"required": ["images"]}}


def _image_body_schema() -> dict[str, Any]:
    schema = image_schema()
    return {"type": "object", "properties": schema["properties"], "additionalProperties": True}


@router.post(
    "/v2/images",
    status_code=201,
    summary="Creating Image Metadata",
    response_model=None,
    responses={201: {"model": ImageDocument, "description": "The new image (queued)"}},
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": _image_body_schema()}}}
    },
)
async def create_image(
    principal: Authenticated, images: ImagesDep, body: Annotated[dict[str, Any], Body()]
) -> Response:
    """Additional string properties are kept (openstacksdk sends ``owner_specified.*``)."""
    record = await images.create_image(principal.project_id, parse_create_body(body))
    return JsonResponse(
        render_image(record),
        status_code=201,
        headers={"Location": f"/v2/images/{record.image.id}"},
    )


@router.get(
    "/v2/images",
    summary="Querying Images",
    response_model=None,
    responses={200: {"model": ImageList, "description": "One page of images"}},
)
async def list_images(request: Request, principal: Authenticated, images: ImagesDep) -> Response:
    """Filters, ``marker``/``limit`` paging (at most 1000 per page) and sorting as in the
    reference; ``next`` is present only when another page follows. Unknown parameters filter
    on the additional property of that name, as Glance does."""
    params = request.query_params.multi_items()
    page = await images.list_images(
        principal.project_id, params, default_limit=NATIVE_DEFAULT_PAGE_SIZE, hide_hidden=True
    )
    body: dict[str, Any] = {
        "images": [render_image(record) for record in page.records],
        "schema": "/v2/schemas/images",
        "first": _page_link(params, None),
    }
    if page.has_more and page.records:
        body["next"] = _page_link(params, page.records[-1].image.id, page.limit)
    return JsonResponse(body)


# Glance serves the list at "/v2/images/" too. DELETE there (an empty image id) is then a 405,
# like any method this path does not serve, rather than a 404 for a missing route.
router.add_api_route(
    "/v2/images/",
    list_images,
    methods=["GET"],
    name="list_images_slash",
    summary="Querying Images (at /v2/images/, as Glance serves it too)",
    response_model=None,
    responses={200: {"model": ImageList, "description": "One page of images"}},
)


def _page_link(params: list[tuple[str, str]], marker: str | None, limit: int | None = None) -> str:
    kept = [(k, v) for k, v in params if k != "marker" and (limit is None or k != "limit")]
    if limit is not None:
        kept.append(("limit", str(limit)))
    if marker is not None:
        kept.append(("marker", marker))
    return "/v2/images" + ("?" + urlencode(kept) if kept else "")


@router.get(
    "/v2/images/{image_id}",
    summary="Querying Image Details",
    response_model=None,
    responses={200: {"model": ImageDocument, "description": "The image"}},
)
async def show_image(image_id: str, principal: Authenticated, images: ImagesDep) -> Response:
    return JsonResponse(render_image(await images.get_image(principal.project_id, image_id)))


@router.patch(
    "/v2/images/{image_id}",
    summary="Modifying an Image",
    response_model=None,
    responses={200: {"model": ImageDocument, "description": "The image after the change"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media_type: {"schema": {"type": "array", "items": PATCH_OPERATION_SCHEMA}}
                for media_type in (*PATCH_MEDIA_TYPES, "application/json")
            },
        }
    },
)
async def update_image(
    image_id: str, request: Request, principal: Authenticated, images: ImagesDep
) -> Response:
    """Glance semantics: any writable base attribute, ``/tags`` (the whole list) and
    additional properties. Departures: the reference's constraint "only customised attributes,
    name and description" is relaxed to what Glance and openstacksdk change; visibility stays
    ``private`` (no sharing)."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in (*PATCH_MEDIA_TYPES, "application/json"):
        raise BadRequest(
            f"The Content-Type must be {PATCH_MEDIA_TYPES[0]} or {PATCH_MEDIA_TYPES[1]}."
        )
    operations = parse_operations(_json(await request.body()))
    record = await images.patch_image(principal.project_id, image_id, operations, "native")
    return JsonResponse(render_image(record))


def _json(raw: bytes) -> Any:
    if not raw:
        raise EmptyBody()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("The request body is not valid JSON.") from exc


@router.delete("/v2/images/{image_id}", status_code=204, summary="Deleting an Image")
async def delete_image(image_id: str, principal: Authenticated, images: ImagesDep) -> Response:
    """A protected image is refused (400 ``IMG.0028``); the reference's ``delete_backup``
    body has nothing to act on here and is ignored."""
    await images.delete_image(principal.project_id, image_id)
    return no_content()


@router.put(
    "/v2/images/{image_id}/file",
    status_code=204,
    summary="Uploading an Image",
    response_class=Response,
    responses={409: ERROR_RESPONSES[409]},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": _BINARY}},
        }
    },
)
async def upload_image_data(
    image_id: str, request: Request, caller: StreamedBodyAuthenticated, images: ImageDataDep
) -> Response:
    """The data streams to the image store; the image goes ``queued`` -> ``saving`` ->
    ``active`` with ``size``, ``checksum`` (MD5) and ``os_hash_value`` (sha512). A second
    upload is 409; data beyond ``max_image_bytes`` 413. Departure: an empty upload leaves a
    queued image queued (``openstack image create`` from a shell with nothing on stdin sends
    one). AK/SK: the signature must cover the data's SHA-256, checked as the data streams and
    before the image turns ``active`` (``UNSIGNED-PAYLOAD`` is refused: 401)."""
    await images.upload(
        caller.principal.project_id,
        image_id,
        _body_chunks(request),
        declared_length=_declared_length(request),
        body_check=caller.body_check,
        status_fault=status_fault(request.scope),
    )
    return no_content()


async def _body_chunks(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect as exc:
        raise BadRequest("The upload was cut off before all its data arrived.") from exc


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


@router.get(
    "/v2/images/{image_id}/file",
    summary="Downloading Image Data",
    response_class=Response,
    responses={
        200: {
            "content": {"application/octet-stream": {"schema": _BINARY}},
            "description": "The image data",
        },
        204: {"description": "The image has no data"},
        206: {
            "content": {"application/octet-stream": {"schema": _BINARY}},
            "description": "The requested range of the data",
        },
        416: ERROR_RESPONSES[416],
    },
)
async def download_image_data(
    image_id: str, request: Request, principal: Authenticated, images: ImageDataDep
) -> Response:
    """Glance's download: 204 for an image without data, 403 for a deactivated one, one
    ``Range`` of bytes served as 206 with ``Content-Range``. ``Content-MD5`` carries the
    data's MD5 in hex as Glance sends it, on full downloads only (a part has another MD5)."""
    download = await images.download(principal.project_id, image_id, request.headers.get("range"))
    if download is None:
        return no_content()
    headers = {"Content-Length": str(download.length)}
    status = 200
    if download.partial:
        status = 206
        last = download.start + download.length - 1
        headers["Content-Range"] = f"bytes {download.start}-{last}/{download.size}"
    elif download.checksum:
        headers["Content-MD5"] = download.checksum
    return StreamingResponse(
        download.chunks,
        status_code=status,
        headers=headers,
        media_type="application/octet-stream",
    )


@router.post(
    "/v2/images/{image_id}/actions/deactivate",
    status_code=204,
    summary="Deactivating an Image",
    response_class=Response,
)
async def deactivate_image(
    image_id: str, principal: Authenticated, images: ImageDataDep
) -> Response:
    """``active`` -> ``deactivated`` (its data can no longer be downloaded); Glance's action,
    which the reference does not list."""
    await images.deactivate(principal.project_id, image_id)
    return no_content()


@router.post(
    "/v2/images/{image_id}/actions/reactivate",
    status_code=204,
    summary="Reactivating an Image",
    response_class=Response,
)
async def reactivate_image(
    image_id: str, principal: Authenticated, images: ImageDataDep
) -> Response:
    """``deactivated`` -> ``active``; Glance's action, which the reference does not list."""
    await images.reactivate(principal.project_id, image_id)
    return no_content()


# The routes below always answer 400 IMG.0105; their documented success is the reference's.
def _not_supported(what: str, *, member: bool) -> Any:
    def handler(image_id: str, _principal: Authenticated) -> Response:
        raise NotSupported(f"The operation is not supported: {what}.")

    def member_handler(image_id: str, member_id: str, _principal: Authenticated) -> Response:
        raise NotSupported(f"The operation is not supported: {what}.")

    return member_handler if member else handler


_DATA = "images take their data through PUT /v2/images/{image_id}/file"
_SHARING = "image sharing is out of scope"
for _method, _path, _what in (
    ("PUT", "/v2/images/{image_id}/stage", _DATA),
    ("POST", "/v2/images/{image_id}/import", _DATA),
    ("GET", "/v2/images/{image_id}/members", _SHARING),
    ("POST", "/v2/images/{image_id}/members", _SHARING),
    ("GET", "/v2/images/{image_id}/members/{member_id}", _SHARING),
    ("PUT", "/v2/images/{image_id}/members/{member_id}", _SHARING),
    ("DELETE", "/v2/images/{image_id}/members/{member_id}", _SHARING),
):
    _suffix = _path.removeprefix("/v2/images/{image_id}/").replace("/{member_id}", "_one")
    router.add_api_route(
        _path,
        _not_supported(_what, member="{member_id}" in _path),
        methods=[_method],
        summary=f"Not supported: {_what}",
        status_code=204,
        response_model=None,
        name=f"not_supported_{_method.lower()}_{_suffix}",
    )
