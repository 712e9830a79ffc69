"""``POST /v2/{project_id}/images/resource_instances/action``: querying images by tag.

Reference page: ims_apis/image_tagging/querying_images_by_tag. The limits are checked in
:mod:`imstags.domain.tags.query_by_tag`; this module only declares the shapes.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from imstags.api.deps import TagsDep
from imstags.api.ims.tags import TagPair
from imstags.api.responses import JsonResponse
from imstags.api.security import ProjectScoped

router = APIRouter(tags=["Image tagging (IMS)"])


class TagConditionEntry(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    key: str = Field(description="Tag key, 1 to 255 characters.")
    values: list[str] = Field(
        description="Up to 10 unique values of up to 255 characters; empty: any value."
    )


class MatchEntry(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    key: str = Field(description="resource_name (substring) or resource_id (exact).")
    value: str = Field(description="Up to 255 characters.")


class ResourceInstancesBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    action: str = Field(description="filter or count (case-sensitive).")
    tags: list[TagConditionEntry] | None = Field(None, description="Has every one of these tags.")
    tags_any: list[TagConditionEntry] | None = Field(None, description="Has any of these tags.")
    not_tags: list[TagConditionEntry] | None = Field(
        None, description="Lacks at least one of these."
    )
    not_tags_any: list[TagConditionEntry] | None = Field(
        None, description="Has none of these tags."
    )
    without_any_tag: bool | None = Field(None, description="Only untagged images.")
    limit: str | int | None = Field(None, description="1 to 1000, default 10 (filter only).")
    offset: str | int | None = Field(None, description="0 or more, default 0 (filter only).")
    matches: list[MatchEntry] | None = None


class ResourceDetail(BaseModel):
    status: str


class Resource(BaseModel):
    resource_id: str
    resource_detail: ResourceDetail
    tags: list[TagPair]
    resource_name: str


class ResourceInstances(BaseModel):
    total_count: int
    resources: list[Resource] | None = Field(None, description="Absent when counting.")


@router.post(
    "/v2/{project_id}/images/resource_instances/action",
    response_model=ResourceInstances,
    response_model_exclude_none=True,
    summary="Querying Images by Tag",
)
async def query_images_by_tag(
    project_id: str, body: ResourceInstancesBody, principal: ProjectScoped, tags: TagsDep
) -> Response:
    """Resources come newest first (then by id); the reference names no order. ``matches``
    on ``resource_name`` is a case-sensitive substring match."""
    result = await tags.query_by_tag(principal.project_id, body.model_dump(exclude_none=True))
    content: dict[str, object] = {"total_count": result.total_count}
    if result.resources is not None:
        content["resources"] = [
            {
                "resource_id": found.image_id,
                "resource_detail": {"status": found.status},
                "tags": [{"key": key, "value": value} for key, value in found.tags],
                "resource_name": found.name,
            }
            for found in result.resources
        ]
    return JsonResponse(content)
