"""IMS image tagging: ``/v2/{project_id}/images/tags`` and ``.../images/{image_id}/tags...``.

Reference chapter: ims_apis/image_tagging (querying_all_image_tags, adding_an_image_tag,
deleting_an_image_tag, querying_tags_of_an_image, adding_or_deleting_image_tags_in_a_batch).
The query by tag is in :mod:`.tag_queries`, the ``/v1/cloudimages/tags`` family in
:mod:`.cloudimage_tags`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict
from starlette.types import Scope

from imstags.api.deps import TagsDep
from imstags.api.hot_routes import HotRequest, HotRoute
from imstags.api.responses import JsonResponse, no_content
from imstags.api.security import (
    AUTHENTICATES_IN_HANDLER,
    ProjectScoped,
    own_project,
    project_principal,
    raw_header,
    scope_principal,
)
from imstags.services.tag_summary import SummaryBody
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
    return await project_tags_response(request.scope, principal.project_id)


setattr(list_project_tags, AUTHENTICATES_IN_HANDLER, True)


async def project_tags_response(scope: Scope, project_id: str) -> Response:
    """The core endpoint's answer, once the caller is known to own ``project_id``."""
    tags: TagService = scope["app"].state.services.tags
    return summary_response(scope, await tags.summary(project_id))


def summary_response(scope: Scope, summary: SummaryBody) -> Response:
    """The summary's body with its ETag, or 304 for a matching ``If-None-Match``. The
    benchmark's floor (benchmarks/floor.py) answers through here too."""
    headers = {"ETag": summary.etag, "Cache-Control": "no-cache"}
    if raw_header(scope, b"if-none-match") == summary.etag:
        return Response(status_code=304, headers=headers)
    return Response(summary.body, media_type="application/json", headers=headers)


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


# --- the lean path (imstags.api.hot_routes): the same work, without the framework ------------


async def _hot_project_tags(request: HotRequest) -> Response:
    project_id = request.params["project_id"]
    own_project(project_id, await scope_principal(request.scope, request.body))
    return await project_tags_response(request.scope, project_id)


def _is_str(value: object) -> bool:
    return type(value) is str  # what pydantic's strict mode takes from JSON


def _batch_tags(document: Any) -> list[tuple[str, str | None]] | None:
    """The tags of a :class:`TagsActionBody` of the usual shape; None for anything else
    (pydantic then judges it, as without the lean path)."""
    if type(document) is not dict or not _is_str(document.get("action")):
        return None
    entries = document.get("tags")
    if type(entries) is not list:
        return None
    pairs: list[tuple[str, str | None]] = []
    for entry in entries:
        if type(entry) is not dict or not _is_str(entry.get("key")):
            return None
        value = entry.get("value")
        if value is not None and not _is_str(value):
            return None
        pairs.append((entry["key"], value))
    return pairs


async def _hot_batch_action(request: HotRequest) -> Response | None:
    pairs = _batch_tags(request.document)
    if pairs is None:
        return None
    params = request.params
    principal = own_project(
        params["project_id"], await scope_principal(request.scope, request.body)
    )
    tags: TagService = request.scope["app"].state.services.tags
    await tags.batch_action(
        principal.project_id, params["image_id"], request.document["action"], pairs
    )
    return no_content()


async def _hot_add_tag(request: HotRequest) -> Response | None:
    document = request.document
    tag = document.get("tag") if type(document) is dict else None
    if type(tag) is not dict or not (_is_str(tag.get("key")) and _is_str(tag.get("value"))):
        return None
    params = request.params
    principal = own_project(
        params["project_id"], await scope_principal(request.scope, request.body)
    )
    tags: TagService = request.scope["app"].state.services.tags
    await tags.add_tag(principal.project_id, params["image_id"], tag["key"], tag["value"])
    return no_content()


async def _hot_delete_tag(request: HotRequest) -> Response:
    params = request.params
    principal = own_project(
        params["project_id"], await scope_principal(request.scope, request.body)
    )
    tags: TagService = request.scope["app"].state.services.tags
    await tags.delete_tag(principal.project_id, params["image_id"], params["key"])
    return no_content()


HOT_ROUTES = (
    HotRoute("GET", "/v2/{project_id}/images/tags", _hot_project_tags),
    HotRoute(
        "POST", "/v2/{project_id}/images/{image_id}/tags/action", _hot_batch_action, json_body=True
    ),
    HotRoute("POST", "/v2/{project_id}/images/{image_id}/tags", _hot_add_tag, json_body=True),
    HotRoute("DELETE", "/v2/{project_id}/images/{image_id}/tags/{key:path}", _hot_delete_tag),
)
"""The routes of this module that the lean path serves (see :mod:`imstags.api.hot_routes`)."""
