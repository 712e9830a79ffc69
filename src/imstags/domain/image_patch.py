"""Modifying an image with a JSON patch: the native ``PATCH /v2/images/{id}`` and IMS's
``PATCH /v2/cloudimages/{id}``.

Both take a list of operations (``add``, ``replace``, ``remove``) on ``/attribute`` paths and
differ in what may be changed: the native API (Glance semantics) changes any writable base
attribute, the tags and additional properties; the IMS API changes the name, ``min_ram`` and
additional properties (``__description``, ``__support_*``, ``hw_firmware_type``, extension
attributes...). The whole patch is applied in one transaction: one bad operation and nothing
changes. Tags given through ``/tags`` go through :func:`replace_image_tags` like every other tag
write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from imstags.domain import image_attributes as attrs
from imstags.domain.images import ImageRecord, utcnow
from imstags.domain.tags import image_tags, lock_image, replace_image_tags, validate_native_tag
from imstags.errors import BadRequest, Forbidden

OPS = ("add", "replace", "remove")
Flavour = Literal["native", "ims"]
# Base attributes the IMS update API may change (updating_an_image.rst); others are properties.
IMS_COLUMNS = frozenset({"name", "min_ram"})


@dataclass(frozen=True)
class PatchOperation:
    op: str
    attribute: str  # the path's one segment, JSON-pointer escapes decoded
    value: Any = None


def parse_operations(body: Any) -> list[PatchOperation]:
    """Read a patch body in either of the two forms the native page names.

    ``application/openstack-images-v2.1-json-patch``: ``{"op": "replace", "path": "/name",
    "value": ...}``; ``...-v2.0-json-patch``: ``{"replace": "/name", "value": ...}``. Each item
    is read by its shape, so either content type accepts either form.
    """
    if not isinstance(body, list):
        raise BadRequest("The request body must be a JSON array of patch operations.")
    if not body:
        raise BadRequest("The patch contains no operations.")
    return [_parse_one(item) for item in body]


def _parse_one(item: Any) -> PatchOperation:
    if not isinstance(item, dict):
        raise BadRequest("Each patch operation must be a JSON object.")
    if "op" in item:
        op, path = item.get("op"), item.get("path")
    else:
        named = [name for name in OPS if name in item]
        if len(named) != 1:
            raise BadRequest("A patch operation needs 'op' and 'path'.")
        op, path = named[0], item[named[0]]
    if op not in OPS:
        raise BadRequest(f"The patch operation must be add, replace or remove, not '{op}'.")
    if not isinstance(path, str) or not path.startswith("/") or len(path) < 2:
        raise BadRequest("A patch path must be a string of the form '/attribute'.")
    segments = path[1:].split("/")
    if len(segments) != 1:
        raise BadRequest(f"The patch path '{path}' names a nested value; only '/attribute' is.")
    attribute = segments[0].replace("~1", "/").replace("~0", "~")
    if op != "remove" and "value" not in item:
        raise BadRequest(f"The '{op}' operation on '{path}' needs a value.")
    return PatchOperation(op, attribute, item.get("value"))


def apply_patch_tx(
    session: Session,
    project_id: str,
    image_id: str,
    operations: Sequence[PatchOperation],
    flavour: Flavour,
) -> ImageRecord:
    """Apply the operations in order to the project's image; returns the image afterwards."""
    image = lock_image(session, project_id, image_id)
    current_tags = image_tags(session, image_id)
    tags = dict(current_tags)
    columns: dict[str, Any] = {}
    properties = dict(image.properties or {})
    for operation in operations:
        name = operation.attribute
        if name == "tags":
            tags = _patched_tags(operation, flavour)
        elif name in attrs.READ_ONLY or name == "__imagetype":
            raise Forbidden(f"Attribute '{name}' is read-only.")
        elif name in attrs.COLUMNS:
            columns[name] = _patched_column(operation, flavour)
        else:
            _patch_property(properties, operation, flavour)
    attrs.check_property_count(properties)
    changed = replace_image_tags(session, image, current_tags, tags)
    for name, value in columns.items():
        column = attrs.COLUMNS[name]
        if getattr(image, column) != value:
            setattr(image, column, value)
            changed = True
    if properties != (image.properties or {}):
        image.properties = properties
        changed = True
    if changed:
        image.updated_at = utcnow()
    session.flush()
    return ImageRecord(image, tags)


def _patched_tags(operation: PatchOperation, flavour: Flavour) -> dict[str, str]:
    if flavour == "ims":
        raise BadRequest(
            "Tags cannot be changed here; use the image tagging APIs.", code="IMG.0105"
        )
    if operation.op == "remove":
        return {}
    value = operation.value
    if not isinstance(value, list):
        raise BadRequest("The value of /tags must be a list of strings.")
    desired: dict[str, str] = {}
    for raw in value:
        key, tag_value = validate_native_tag(raw)
        desired[key] = tag_value  # as on create: the last of several "k=..." wins
    return desired


def _patched_column(operation: PatchOperation, flavour: Flavour) -> Any:
    name = operation.attribute
    if operation.op == "remove":
        raise Forbidden(f"Attribute '{name}' is a base attribute and cannot be removed.")
    value = operation.value
    if flavour == "ims":
        if name not in IMS_COLUMNS:
            raise BadRequest(f"Attribute '{name}' cannot be updated.", code="IMG.0105")
        if name == "name":
            return attrs.check_ims_name(value)
        value = _ims_integer(name, value)
    if name == "visibility" and value != "private":
        raise BadRequest("Image sharing is not supported: visibility can only be private.")
    return attrs.check_value(name, value)


def _ims_integer(name: str, value: Any) -> Any:
    """The IMS update body declares every value a string; ``"1024"`` means 1024."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def _patch_property(
    properties: dict[str, Any], operation: PatchOperation, flavour: Flavour
) -> None:
    name = operation.attribute
    if flavour == "ims" and name != name.lower():
        raise BadRequest("Extension attribute names cannot contain uppercase letters.")
    exists = name in properties
    if operation.op in ("replace", "remove") and not exists:
        raise BadRequest(f"The image has no attribute '{name}' to {operation.op}.", code="IMG.0035")
    if operation.op == "remove":
        del properties[name]
        return
    properties[name] = attrs.check_property(name, operation.value)
