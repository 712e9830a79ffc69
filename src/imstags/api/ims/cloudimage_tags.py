"""The ``/v1/cloudimages/tags`` family of IMS tag APIs.

Reference pages: ims_apis/image_tagging/adding_or_modifying_a_tag and querying_tags. The
batch delete ``DELETE /v1/{project_id}/cloudimages/{image_id}/tags/delete`` has no page in the
reference; it is the SDK's BatchDeleteTags, and follows the delete rules of the batch action.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from imstags.api.deps import TagsDep
from imstags.api.ims.tags import NewTag, TagEntry
from imstags.api.responses import JsonResponse, no_content
from imstags.api.security import Authenticated, ProjectScoped

router = APIRouter(tags=["Image tagging (IMS)"])


class AddOrModifyTagBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    image_id: str
    tag: str | None = Field(
        None, description="'key.value' (split on the first '.'); use either tag or image_tag."
    )
    image_tag: NewTag | None = Field(None, description="Use either tag or image_tag.")


class BatchDeleteBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    tags: list[TagEntry]


@router.put(
    "/v1/cloudimages/tags",
    status_code=204,
    response_class=Response,
    summary="Adding or Modifying a Tag",
)
async def add_or_modify_tag(
    body: AddOrModifyTagBody, principal: Authenticated, tags: TagsDep
) -> Response:
    """A ``tag`` without ``.`` is a key with the empty value (the reference shows only
    ``key.value``)."""
    image_tag = (body.image_tag.key, body.image_tag.value) if body.image_tag else None
    await tags.add_or_modify_tag(principal.project_id, body.image_id, body.tag, image_tag)
    return no_content()


class TagStrings(BaseModel):
    tags: list[str] = Field(description="Distinct tags, 'key=value' or 'key' (empty value).")


@router.get(
    "/v1/cloudimages/tags",
    response_model=TagStrings,
    summary="Querying Tags",
)
async def list_tags(
    request: Request,
    principal: Authenticated,
    tags: TagsDep,
    limit: Annotated[int | None, Query(description="Images per page; 500 by default.")] = None,
    page: Annotated[int | None, Query(description="1-based page of images.")] = None,
    marker: Annotated[str | None, Query(description="Start after this image ID.")] = None,
    sort_key: Annotated[str | None, Query(description="created_at by default.")] = None,
    sort_dir: Annotated[str | None, Query(description="desc (default) or asc.")] = None,
    tag: Annotated[list[str] | None, Query(description="'key=value' or 'key'.")] = None,
) -> Response:
    """The distinct tags of one page of the caller's images that match the filters (any
    filter of ``GET /v2/cloudimages``), as ``key=value`` strings (``key`` for an empty value),
    in ascending order. ``page`` (in the reference's example and the SDK) is 1-based and
    counts pages of ``limit`` images. The declared parameters are read from the raw query
    string together with every other filter, so that their checks and messages are the image
    listing's."""
    params = request.query_params.multi_items()
    return JsonResponse({"tags": await tags.tag_strings(principal.project_id, params)})


@router.delete(
    "/v1/{project_id}/cloudimages/{image_id}/tags/delete",
    status_code=204,
    response_class=Response,
    summary="Deleting Image Tags in a Batch (SDK BatchDeleteTags)",
)
async def batch_delete_tags(
    project_id: str,
    image_id: str,
    body: BatchDeleteBody,
    principal: ProjectScoped,
    tags: TagsDep,
) -> Response:
    """Not in the reference: the SDK's BatchDeleteTags. Same rules as the batch action's
    delete (key 1-127, value up to 255, characters unchecked, absent tags ignored)."""
    pairs = [(tag.key, tag.value) for tag in body.tags]
    await tags.batch_delete(principal.project_id, image_id, pairs)
    return no_content()
