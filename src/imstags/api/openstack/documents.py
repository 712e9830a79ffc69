"""The image document of the native API (also the IMS listing's items), and its schemas.

One flat object per image, as Glance renders it, with IMS's ``__`` attributes: the base
attributes, then every additional property at the top level.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from imstags.domain.images.records import ImageRecord
from imstags.domain.tags.native import format_native_tag


class ImageDocument(BaseModel):
    """An image (additional string properties appear as further top-level members)."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    status: str
    visibility: str
    protected: bool
    os_hidden: bool
    container_format: str
    disk_format: str
    min_disk: int
    min_ram: int
    size: int | None
    virtual_size: int | None
    checksum: str | None
    os_hash_algo: str | None
    os_hash_value: str | None
    owner: str
    tags: list[str]
    created_at: str
    updated_at: str
    self_: str = Field(alias="self")
    file: str
    schema_: str = Field(alias="schema")
    imagetype: str = Field(alias="__imagetype")
    isregistered: str = Field(alias="__isregistered")
    virtual_env_type: str


def render_image(record: ImageRecord) -> dict[str, Any]:
    image = record.image
    doc: dict[str, Any] = dict(image.properties or {})
    doc.update(
        {
            "id": image.id,
            "name": image.name,
            "status": image.status,
            "visibility": image.visibility,
            "protected": image.protected,
            "os_hidden": image.os_hidden,
            "container_format": image.container_format,
            "disk_format": image.disk_format,
            "min_disk": image.min_disk,
            "min_ram": image.min_ram,
            "size": image.size,
            "virtual_size": image.virtual_size,
            "checksum": image.checksum,
            "os_hash_algo": image.os_hash_algo,
            "os_hash_value": image.os_hash_value,
            "owner": image.project_id,
            "tags": sorted(format_native_tag(k, v) for k, v in record.tags.items()),
            "created_at": iso_time(image.created_at),
            "updated_at": iso_time(image.updated_at),
            "self": f"/v2/images/{image.id}",
            "file": f"/v2/images/{image.id}/file",
            "schema": "/v2/schemas/image",
            "__imagetype": image.image_type,
            "__isregistered": "true",
            "virtual_env_type": image.virtual_env_type,
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


def iso_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
