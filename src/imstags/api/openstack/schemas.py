"""Image schemas: ``GET /v2/schemas/image`` and ``GET /v2/schemas/images``.

Reference chapter: native_openstack_apis/image_schema_native_openstack_apis. The documents
describe what this server really accepts and returns (its formats, its nullable ``size`` and
``checksum``), in the JSON-schema shape Glance serves, because glanceclient validates images
against it. Like every image API, they need credentials. The member schemas are not served:
sharing is out of scope.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from imstags.api.responses import JsonResponse
from imstags.api.security import Authenticated
from imstags.domain.images import attributes
from imstags.domain.tags.native import NATIVE_TAG_MAX_LENGTH

router = APIRouter(tags=["Image schemas (native OpenStack)"])

_UUID_PATTERN = (
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
)


class SchemaLink(BaseModel):
    href: str
    rel: str


class SchemaDocument(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    properties: dict[str, Any]
    links: list[SchemaLink]
    additional_properties: dict[str, Any] | None = Field(None, alias="additionalProperties")


def _read_only(kind: Any, description: str) -> dict[str, Any]:
    return {"type": kind, "readOnly": True, "description": f"{description} (READ-ONLY)"}


def image_schema() -> dict[str, Any]:
    string = "string"
    return {
        "name": "image",
        "additionalProperties": {"type": "string"},
        "links": [
            {"href": "{self}", "rel": "self"},
            {"href": "{file}", "rel": "enclosure"},
            {"href": "{schema}", "rel": "describedby"},
        ],
        "properties": {
            "id": {"type": string, "pattern": _UUID_PATTERN, "description": "Image ID"},
            "name": {
                "type": ["null", string],
                "maxLength": attributes.NAME_MAX_LENGTH,
                "description": "Image name",
            },
            "status": {
                "type": string,
                "readOnly": True,
                "enum": [
                    "queued",
                    "saving",
                    "active",
                    "killed",
                    "deleted",
                    "pending_delete",
                    "deactivated",
                ],  # fmt: skip
                "description": "Status of the image (READ-ONLY)",
            },
            "visibility": {"type": string, "enum": list(attributes.VISIBILITIES)},
            "protected": {"type": "boolean", "description": "If true, the image cannot be deleted"},
            "os_hidden": {
                "type": "boolean",
                "description": "If true, the image is left out of lists unless asked for",
            },
            "tags": {
                "type": "array",
                "items": {"type": string, "maxLength": NATIVE_TAG_MAX_LENGTH},
                "description": "Tags; 'key=value' is the IMS tag key with its value",
            },
            "container_format": {
                "type": ["null", string],
                "enum": [None, *attributes.CONTAINER_FORMATS],
            },
            "disk_format": {"type": ["null", string], "enum": [None, *attributes.DISK_FORMATS]},
            "min_ram": {"type": "integer", "minimum": 0, "description": "MB of RAM to boot"},
            "min_disk": {"type": "integer", "minimum": 0, "description": "GB of disk to boot"},
            "owner": {"type": ["null", string], "maxLength": 255, "description": "Project ID"},
            "size": _read_only(["null", "integer"], "Size of the image data in bytes"),
            "virtual_size": _read_only(["null", "integer"], "Virtual size in bytes"),
            "checksum": _read_only(["null", string], "MD5 of the image data"),
            "os_hash_algo": _read_only(["null", string], "Algorithm of os_hash_value"),
            "os_hash_value": _read_only(["null", string], "Hash of the image data"),
            "created_at": _read_only(string, "Creation time"),
            "updated_at": _read_only(string, "Last modification time"),
            "self": _read_only(string, "URL of the image"),
            "file": _read_only(string, "URL of the image data"),
            "schema": _read_only(string, "URL of this schema"),
            **_optional(
                {
                    "__imagetype": {"type": string, "enum": list(attributes.IMAGE_TYPES)},
                    "__isregistered": _read_only(string, "Whether the image is registered"),
                    "__os_type": {"type": string, "enum": list(attributes.OS_TYPES)},
                    "__platform": {"type": string, "maxLength": 32},
                    "__os_version": {"type": string, "maxLength": 128},
                    "__os_bit": {"type": string},
                    "__description": {
                        "type": string,
                        "maxLength": attributes.DESCRIPTION_MAX_LENGTH,
                    },
                    "virtual_env_type": {
                        "type": string,
                        "enum": list(attributes.VIRTUAL_ENV_TYPES),
                    },
                    "hw_firmware_type": {"type": string, "enum": list(attributes.FIRMWARE_TYPES)},
                }
            ),
        },
    }


def _optional(properties: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mark the IMS extension attributes ``"is_base": false``, as Glance marks the properties
    of its schema that are not base attributes. glanceclient reads the mark: for a property the
    image lacks, it sends ``add`` instead of ``replace`` (which the server must refuse)."""
    return {name: {**schema, "is_base": False} for name, schema in properties.items()}


def images_schema() -> dict[str, Any]:
    return {
        "name": "images",
        "links": [
            {"href": "{first}", "rel": "first"},
            {"href": "{next}", "rel": "next"},
            {"href": "{schema}", "rel": "describedby"},
        ],
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
    }


@router.get(
    "/v2/schemas/image",
    summary="Querying an Image Schema",
    responses={200: {"model": SchemaDocument, "description": "The image schema"}},
)
def show_image_schema(_principal: Authenticated) -> JsonResponse:
    return JsonResponse(image_schema())


@router.get(
    "/v2/schemas/images",
    summary="Querying an Image List Schema",
    responses={200: {"model": SchemaDocument, "description": "The image list schema"}},
)
def show_images_schema(_principal: Authenticated) -> JsonResponse:
    return JsonResponse(images_schema())
