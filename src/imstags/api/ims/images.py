"""IMS image queries: ``GET /v2/cloudimages`` and ``PATCH /v2/cloudimages/{image_id}``.

Reference chapter: ims_apis/image (querying_images, updating_an_image). The query shares its
parsing and SQL with the native listing (:mod:`imstags.domain.images.listing`); the items are
the same image documents.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, ConfigDict

from imstags.api.deps import ImagesDep
from imstags.api.openstack.documents import ImageDocument, render_image
from imstags.api.responses import ERROR_RESPONSES, JsonResponse
from imstags.api.security import Authenticated
from imstags.domain.images.listing import IMS_DEFAULT_PAGE_SIZE
from imstags.domain.images.patch import parse_operations

router = APIRouter(tags=["Images (IMS)"])


class CloudImageList(BaseModel):
    images: list[ImageDocument]


class UpdateOperationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: str
    path: str
    value: Any = None


@router.get(
    "/v2/cloudimages",
    summary="Querying Images",
    response_model=None,
    responses={200: {"model": CloudImageList, "description": "One page of images"}},
)
async def list_cloud_images(
    request: Request, principal: Authenticated, images: ImagesDep
) -> Response:
    """Filters (``tag``, ``__imagetype``, ``__platform``, ``__os_type``, ``name``, times...),
    ``marker``/``limit`` paging (500 by default, at most 1000) and sorting, as the reference
    lists them. The caller sees its own project's images only; ``member_status`` (sharing)
    matches nothing. The body is ``{"images": [...]}``: the next page starts after the last
    image's id (``marker``)."""
    page = await images.list_images(
        principal.project_id,
        request.query_params.multi_items(),
        default_limit=IMS_DEFAULT_PAGE_SIZE,
    )
    return JsonResponse({"images": [render_image(record) for record in page.records]})


@router.patch(
    "/v2/cloudimages/{image_id}",
    summary="Updating an Image",
    response_model=None,
    responses={
        200: {"model": ImageDocument, "description": "The image after the update"},
        409: ERROR_RESPONSES[409],
    },
)
async def update_cloud_image(
    image_id: str,
    principal: Authenticated,
    images: ImagesDep,
    body: Annotated[list[UpdateOperationBody], Body()],
) -> Response:
    """Changes ``name`` (1-128 characters of letters, digits, ``-._`` and spaces),
    ``min_ram`` and additional attributes (``__description``, ``__support_*``,
    ``hw_firmware_type``, ``max_ram``, extension attributes in lower case...). Departure: the
    reference updates only ``active`` images; imstags updates ``queued`` ones too (an image
    waits there for its data, and tools set its attributes before the upload); any other
    status (``saving``, ``deactivated``) is 409."""
    operations = parse_operations([item.model_dump(exclude_unset=True) for item in body])
    record = await images.patch_image(principal.project_id, image_id, operations, "ims")
    return JsonResponse(render_image(record))
