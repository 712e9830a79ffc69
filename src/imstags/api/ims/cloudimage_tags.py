"""The ``/v1/cloudimages/tags`` family of IMS tag APIs.

Reference pages: ims_apis/image_tagging/adding_or_modifying_a_tag and querying_tags. The
batch delete ``DELETE /v1/{project_id}/cloudimages/{image_id}/tags/delete`` has no page in the
reference; it is the SDK's BatchDeleteTags, and follows the delete rules of the batch action.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from imstags.api.deps import ServicesDep
from imstags.api.responses import no_content
from imstags.api.security import Authenticated, ProjectScoped
from imstags.domain import tagging

router = APIRouter(tags=["Image tagging (IMS)"])


class KeyValue(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str
    value: str


class OptionalValueTag(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str
    value: str | None = None


class AddOrModifyTagBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    image_id: str
    tag: str | None = Field(
        None, description="'key.value' (split on the first '.'); use either tag or image_tag."
    )
    image_tag: KeyValue | None = Field(None, description="Use either tag or image_tag.")


class BatchDeleteBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tags: list[OptionalValueTag]


@router.put(
    "/v1/cloudimages/tags",
    status_code=204,
    response_class=Response,
    summary="Adding or Modifying a Tag",
)
def add_or_modify_tag(
    body: AddOrModifyTagBody, principal: Authenticated, services: ServicesDep
) -> Response:
    """A ``tag`` without ``.`` is a key with the empty value (the reference shows only
    ``key.value``)."""
    image_tag = (body.image_tag.key, body.image_tag.value) if body.image_tag else None
    tagging.add_or_modify_tag(services.db, principal.project_id, body.image_id, body.tag, image_tag)
    return no_content()


@router.delete(
    "/v1/{project_id}/cloudimages/{image_id}/tags/delete",
    status_code=204,
    response_class=Response,
    summary="Deleting Image Tags in a Batch (SDK BatchDeleteTags)",
)
def batch_delete_tags(
    project_id: str,
    image_id: str,
    body: BatchDeleteBody,
    principal: ProjectScoped,
    services: ServicesDep,
) -> Response:
    """Not in the reference: the SDK's BatchDeleteTags. Same rules as the batch action's
    delete (key 1-127, value up to 255, characters unchecked, absent tags ignored)."""
    tagging.batch_delete(
        services.db, principal.project_id, image_id, [(t.key, t.value) for t in body.tags]
    )
    return no_content()
