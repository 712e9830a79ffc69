"""Native OpenStack images: ``/v2/images`` and ``/v2/images/{image_id}``.

Reference chapter: native_openstack_apis/image_native_openstack_apis.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from imstags.api.deps import ServicesDep
from imstags.api.responses import JsonResponse, no_content
from imstags.api.security import Authenticated
from imstags.domain import images
from imstags.domain.tags import format_native_tag
from imstags.errors import BadRequest, Forbidden, ImageNotFound

router = APIRouter(tags=["Images (native OpenStack)"])

READ_ONLY = {
    "status", "created_at", "updated_at", "owner", "checksum", "size", "virtual_size",
    "self", "file", "schema", "direct_url", "locations",
}  # fmt: skip
DISK_FORMATS = {
    "zvhd2", "zvhd", "vhd", "raw", "qcow2", "vmdk", "vdi", "iso", "ami", "ari", "aki", "ploop",
}  # fmt: skip
CONTAINER_FORMATS = {"bare", "ovf", "ami", "ari", "aki", "ova", "docker", "compressed"}
VISIBILITIES = {"private", "shared", "community", "public"}
_STRING_COLUMNS = {"__imagetype", "__os_type", "__platform", "__os_version", "virtual_env_type"}


def render_image(record: images.ImageRecord) -> dict[str, Any]:
    """The flat Glance-style image document with IMS's ``__`` attributes."""
    image = record.image
    doc: dict[str, Any] = dict(image.properties or {})
    doc.update(
        {
            "id": image.id,
            "name": image.name,
            "status": image.status,
            "visibility": image.visibility,
            "protected": image.protected,
            "container_format": image.container_format,
            "disk_format": image.disk_format,
            "min_disk": image.min_disk,
            "min_ram": image.min_ram,
            "size": image.size,
            "virtual_size": image.virtual_size,
            "checksum": image.checksum,
            "owner": image.project_id,
            "tags": sorted(format_native_tag(k, v) for k, v in record.tags.items()),
            "created_at": _iso(image.created_at),
            "updated_at": _iso(image.updated_at),
            "self": f"/v2/images/{image.id}",
            "file": f"/v2/images/{image.id}/file",
            "schema": "/v2/schemas/image",
            "__imagetype": image.image_type,
            "virtual_env_type": image.virtual_env_type,
            "__isregistered": "true",
        }
    )
    for attr, value in (
        ("__os_type", image.os_type),
        ("__platform", image.platform),
        ("__os_version", image.os_version),
    ):
        if value is not None:
            doc[attr] = value
    return doc


def _iso(value: Any) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _split_create_body(
    body: dict[str, Any],
) -> tuple[dict[str, Any], list[str], dict[str, Any], str | None]:
    attributes: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    tags = body.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise BadRequest("tags must be a list of strings.")
    image_id = body.get("id")
    if image_id is not None and (
        not isinstance(image_id, str) or not images.is_well_formed_id(image_id)
    ):
        raise BadRequest("id must be a UUID.")
    for name, value in body.items():
        if name in ("tags", "id"):
            continue
        if name in READ_ONLY:
            raise Forbidden(f"Attribute '{name}' is read-only.")
        if name == "name":
            if not isinstance(value, str) or len(value) > 255:
                raise BadRequest("name must be a string of at most 255 characters.")
        elif name == "protected":
            if not isinstance(value, bool):
                raise BadRequest("protected must be a boolean.")
        elif name in ("min_disk", "min_ram"):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise BadRequest(f"{name} must be a non-negative integer.")
        elif name == "disk_format":
            if value not in DISK_FORMATS:
                raise BadRequest(f"disk_format must be one of {', '.join(sorted(DISK_FORMATS))}.")
        elif name == "container_format":
            if value not in CONTAINER_FORMATS:
                raise BadRequest("container_format is not supported.")
        elif name == "visibility":
            if value not in VISIBILITIES:
                raise BadRequest("visibility must be private, shared, community or public.")
        elif name in _STRING_COLUMNS:
            if not isinstance(value, str):
                raise BadRequest(f"{name} must be a string.")
        else:
            if not isinstance(value, str) or len(value) > 255 or len(name) > 255:
                raise BadRequest(f"Additional property '{name}' must be a string.")
            properties[name] = value
            continue
        attributes[name] = value
    return attributes, tags, properties, image_id


@router.post("/v2/images", status_code=201, summary="Creating Image Metadata")
def create_image(
    principal: Authenticated, services: ServicesDep, body: Annotated[dict[str, Any], Body()]
) -> Response:
    attributes, tags, properties, image_id = _split_create_body(body)
    record = services.db.write(
        lambda s: images.create_image_tx(
            s, principal.project_id, attributes, tags, properties, image_id
        )
    )
    return JsonResponse(
        render_image(record),
        status_code=201,
        headers={"Location": f"/v2/images/{record.image.id}"},
    )


@router.get("/v2/images/{image_id}", summary="Querying Image Details")
def show_image(image_id: str, principal: Authenticated, services: ServicesDep) -> Response:
    if not images.is_well_formed_id(image_id):
        raise ImageNotFound()
    with services.db.read() as session:
        record = images.get_image(session, principal.project_id, image_id)
    return JsonResponse(render_image(record))


@router.delete("/v2/images/{image_id}", status_code=204, summary="Deleting an Image")
def delete_image(image_id: str, principal: Authenticated, services: ServicesDep) -> Response:
    if not images.is_well_formed_id(image_id):
        raise ImageNotFound()
    services.db.write(lambda s: images.delete_image_tx(s, principal.project_id, image_id))
    return no_content()
