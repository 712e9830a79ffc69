"""``POST /v2/{project_id}/images/resource_instances/action``: querying images by tag.

Reference page: ims_apis/image_tagging/querying_images_by_tag. The limits are checked in
:mod:`imstags.domain.tag_queries`; this module only declares the shapes.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from imstags.api.deps import ServicesDep
from imstags.api.responses import JsonResponse
from imstags.api.security import ProjectScoped
from imstags.domain.tags import query_by_tag as tag_queries

router = APIRouter(tags=["Image tagging (IMS)"])


class TagQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str = Field(description="Tag key, 1 to 128 characters.")
    values: list[str] = Field(
        description="Up to 10 unique values of up to 255 characters; empty: any value."
    )


class Match(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str = Field(description="resource_name (substring) or resource_id (exact).")
    value: str = Field(description="Up to 255 characters.")


class ResourceInstancesBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: str = Field(description="filter or count (case-sensitive).")
    tags: list[TagQuery] | None = Field(None, description="Has every one of these tags.")
    tags_any: list[TagQuery] | None = Field(None, description="Has any of these tags.")
    not_tags: list[TagQuery] | None = Field(None, description="Lacks at least one of these.")
    not_tags_any: list[TagQuery] | None = Field(None, description="Has none of these tags.")
    without_any_tag: bool | None = Field(None, description="Only untagged images.")
    limit: str | int | None = Field(None, description="1 to 1000, default 10 (filter only).")
    offset: str | int | None = Field(None, description="0 or more, default 0 (filter only).")
    matches: list[Match] | None = None


class ResourceTag(BaseModel):
    key: str
    value: str


class ResourceDetail(BaseModel):
    status: str


class Resource(BaseModel):
    resource_id: str
    resource_detail: ResourceDetail
    tags: list[ResourceTag]
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
def query_images_by_tag(
    project_id: str, body: ResourceInstancesBody, principal: ProjectScoped, services: ServicesDep
) -> Response:
    """Resources come newest first (then by id); the reference names no order. ``matches``
    on ``resource_name`` is a case-sensitive substring match."""
    query = tag_queries.parse_query(body.model_dump(exclude_none=True))
    with services.db.read() as session:
        result = tag_queries.run_query(session, principal.project_id, query)
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
