"""IMS image tagging: ``/v2/{project_id}/images/tags`` and ``.../images/{image_id}/tags...``.

Reference chapter: ims_apis/image_tagging.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from imstags.api.deps import ServicesDep
from imstags.api.responses import no_content
from imstags.api.security import ProjectScoped
from imstags.domain import tagging
from imstags.errors import BadRequest

router = APIRouter(tags=["Image tagging (IMS)"])


class TagEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str
    value: str | None = None


class TagsActionBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: str
    tags: list[TagEntry]


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
def list_project_tags(
    project_id: str, request: Request, principal: ProjectScoped, services: ServicesDep
) -> Response:
    """Every tag key of the project's images with its distinct values.

    Served from a cached body that is rebuilt only when the project's tags change; answers
    ``If-None-Match`` with 304 (an addition: the reference knows no ETag).
    """
    summary = services.summaries.get(principal.project_id)
    headers = {"ETag": summary.etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == summary.etag:
        return Response(status_code=304, headers=headers)
    return Response(summary.body, media_type="application/json", headers=headers)


@router.post(
    "/v2/{project_id}/images/{image_id}/tags/action",
    status_code=204,
    response_class=Response,
    summary="Adding or Deleting Image Tags in a Batch",
)
def batch_tags_action(
    project_id: str,
    image_id: str,
    body: TagsActionBody,
    principal: ProjectScoped,
    services: ServicesDep,
) -> Response:
    if not body.tags:
        raise BadRequest("The tags list must not be empty.")
    tagging.batch_action(
        services.db,
        principal.project_id,
        image_id,
        body.action,
        [(tag.key, tag.value) for tag in body.tags],
    )
    return no_content()
