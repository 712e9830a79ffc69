"""IMS image tagging: ``/v2/{project_id}/images/tags`` and ``.../images/{image_id}/tags...``.

Reference chapter: ims_apis/image_tagging (querying_all_image_tags, adding_an_image_tag,
deleting_an_image_tag, querying_tags_of_an_image, adding_or_deleting_image_tags_in_a_batch).
The query by tag is in :mod:`.tag_queries`, the ``/v1/cloudimages/tags`` family in
:mod:`.cloudimage_tags`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from imstags.api.deps import TagsDep
from imstags.api.responses import JsonResponse, no_content
from imstags.api.security import (
    AUTHENTICATES_IN_HANDLER,
    ProjectScoped,
    project_principal,
    raw_header,
)
from imstags.services.tags import TagService

router = APIRouter(tags=["Image tagging (IMS)"])


class TagEntry(BaseModel):
    """A tag of the batch action: ``value`` is mandatory to create, optional to delete."""

    model_config = ConfigDict(extra="ignore", strict=True)

    key: str
    value: str | None = None


class TagsActionBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    action: str
    tags: list[TagEntry]


class NewTag(BaseModel):
    """A tag to write: the value is mandatory and may be the empty string."""

    model_config = ConfigDict(extra="ignore", strict=True)

    key: str
    value: str


class AddTagBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    tag: NewTag


class TagPair(BaseModel):
    """One tag of an image as the IMS APIs render it."""

    key: str
    value: str


class TagPairList(BaseModel):
    tags: list[TagPair]


class TagSummary(BaseModel):
    key: str
    values: list[str]


class TagSummaryList(BaseModel):
    tags: list[TagSummary]


@router.get(
    "/v2/{project_id}/images/tags",
    response_model=TagSummaryList,
    summary="Querying All Image Tags",
    responses={304: {"description": "Not modified since the ETag given in If-None-Match"}},
)
async def list_project_tags(project_id: str, request: Request) -> Response:
    """Every tag key of the project's images with its distinct values.

    Served from a cached body that is rebuilt only when the project's tags change; answers
    ``If-None-Match`` with 304 (an addition: the reference knows no ETag).
    """
    # The hot path: async, so that the common case (body still current, one indexed lookup)
    # costs no thread hop. Authentication and the service are reached directly rather than
    # through FastAPI's dependency resolution, which costs as much as the check itself (see
    # ``project_principal``).
    principal = await project_principal(request, project_id)
    tags: TagService = request.app.state.services.tags
    summary = await tags.summary(principal.project_id)
    headers = {"ETag": summary.etag, "Cache-Control": "no-cache"}
    if raw_header(request.scope, b"if-none-match") == summary.etag:
        return Response(status_code=304, headers=headers)
    return Response(summary.body, media_type="application/json", headers=headers)


setattr(list_project_tags, AUTHENTICATES_IN_HANDLER, True)


@router.post(
    "/v2/{project_id}/images/{image_id}/tags/action",
    status_code=204,
    response_class=Response,
    summary="Adding or Deleting Image Tags in a Batch",
)
async def batch_tags_action(
    project_id: str, image_id: str, body: TagsActionBody, principal: ProjectScoped, tags: TagsDep
) -> Response:
    pairs = [(tag.key, tag.value) for tag in body.tags]
    await tags.batch_action(principal.project_id, image_id, body.action, pairs)
    return no_content()


@router.post(
    "/v2/{project_id}/images/{image_id}/tags",
    status_code=204,
    response_class=Response,
    summary="Adding an Image Tag",
)
async def add_image_tag(
    project_id: str, image_id: str, body: AddTagBody, principal: ProjectScoped, tags: TagsDep
) -> Response:
    await tags.add_tag(principal.project_id, image_id, body.tag.key, body.tag.value)
    return no_content()


@router.get(
    "/v2/{project_id}/images/{image_id}/tags",
    response_model=TagPairList,
    summary="Querying Tags of an Image",
)
async def list_image_tags(
    project_id: str, image_id: str, principal: ProjectScoped, tags: TagsDep
) -> Response:
    """Tags in ascending key order (the reference names no order)."""
    pairs = await tags.image_tags(principal.project_id, image_id)
    return JsonResponse({"tags": [{"key": key, "value": value} for key, value in pairs]})


@router.delete(
    "/v2/{project_id}/images/{image_id}/tags/{key:path}",
    status_code=204,
    response_class=Response,
    summary="Deleting an Image Tag",
)
async def delete_image_tag(
    project_id: str, image_id: str, key: str, principal: ProjectScoped, tags: TagsDep
) -> Response:
    """The key is the rest of the path, so a key containing ``/`` (sent as ``%2F``, as the
    SDK encodes it) can be deleted too."""
    await tags.delete_tag(principal.project_id, image_id, key)
    return no_content()
