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

from imstags.domain.images import attributes, lifecycle
from imstags.domain.images.records import ImageRecord, utcnow
from imstags.domain.images.tag_list import resolve_tag_list
from imstags.domain.tags.native import format_native_tag
from imstags.domain.tags.write_path import image_tags, lock_image, replace_image_tags
from imstags.errors import AttributeConflict, BadRequest, Forbidden, NotSupported
from imstags.storage.tag_rows import TagRows

OPS = ("add", "replace", "remove")
Flavour = Literal["native", "ims"]
# Base attributes the IMS update API may change (updating_an_image.rst); others are properties.
IMS_COLUMNS = frozenset({"name", "min_ram"})


@dataclass(frozen=True)
class PatchOperation:
    op: str
    attribute: str  # the path's first segment, JSON-pointer escapes decoded
    value: Any = None
    index: str | None = None  # "/tags/<n>" or "/tags/-": one element of the tag list


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
    segments = [s.replace("~1", "/").replace("~0", "~") for s in path[1:].split("/")]
    index = None
    if len(segments) == 2 and segments[0] == "tags":
        index = segments[1]
        if not (index == "-" or index.isdigit()):
            raise BadRequest(f"The patch path '{path}' needs a list index or '-'.")
    elif len(segments) != 1:
        raise BadRequest(f"The patch path '{path}' names a nested value; only '/attribute' is.")
    if op != "remove" and "value" not in item:
        raise BadRequest(f"The '{op}' operation on '{path}' needs a value.")
    return PatchOperation(op, segments[0], item.get("value"), index)


def apply_patch_tx(
    session: Session,
    project_id: str,
    image_id: str,
    operations: Sequence[PatchOperation],
    flavour: Flavour,
) -> ImageRecord:
    """Apply the operations in order to the project's image; returns the image afterwards."""
    image = lock_image(session, project_id, image_id)
    if flavour == "ims":
        lifecycle.check_ims_updatable(image.status)
    current_tags = image_tags(session, image_id)
    # The tag list as clients last read it (sorted, as rendered), so that indices match.
    tag_list = sorted(format_native_tag(k, v) for k, v in current_tags.items())
    columns: dict[str, Any] = {}
    properties = dict(image.properties or {})
    for operation in operations:
        name = operation.attribute
        if name == "tags":
            tag_list = _patched_tags(tag_list, operation, flavour)
        elif name in attributes.READ_ONLY or name == "__imagetype":
            raise Forbidden(f"Attribute '{name}' is read-only.")
        elif name.startswith(attributes.RESERVED_PREFIX):
            attributes.check_not_reserved(name)  # remove too: 403
        elif name in attributes.COLUMNS:
            columns[name] = _patched_column(operation, flavour)
        else:
            _patch_property(properties, operation, flavour)
    attributes.check_property_count(properties)
    tags = resolve_tag_list(tag_list, current_tags)  # the new value of a key wins
    changed = replace_image_tags(
        TagRows.of(session), image.project_id, image.id, current_tags, tags
    )
    for name, value in columns.items():
        column = attributes.COLUMNS[name]
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


def _patched_tags(tags: list[Any], operation: PatchOperation, flavour: Flavour) -> list[Any]:
    """The tag list after one operation on ``/tags`` or on one element ``/tags/<n>``."""
    if flavour == "ims":
        raise NotSupported("Tags cannot be changed here; use the image tagging APIs.")
    op, index, value = operation.op, operation.index, operation.value
    if index is None:
        if op == "remove":
            return []
        if not isinstance(value, list):
            raise BadRequest("The value of /tags must be a list of strings.")
        return list(value)
    result = list(tags)
    position = len(result) if index == "-" else int(index)
    limit = len(result) if op == "add" else len(result) - 1
    if position > limit or (index == "-" and op != "add"):
        raise AttributeConflict(f"The tag list has no element {index}.")
    if op == "add":
        result.insert(position, value)
    elif op == "replace":
        result[position] = value
    else:
        del result[position]
    return result


def _patched_column(operation: PatchOperation, flavour: Flavour) -> Any:
    name = operation.attribute
    if operation.op == "remove":
        raise Forbidden(f"Attribute '{name}' is a base attribute and cannot be removed.")
    value = operation.value
    if flavour == "ims":
        if name not in IMS_COLUMNS:
            raise NotSupported(f"Attribute '{name}' cannot be updated.")
        if name == "name":
            return attributes.check_ims_name(value)
        value = _ims_integer(name, value)
    if name == "visibility" and value != "private":
        raise BadRequest("Image sharing is not supported: visibility can only be private.")
    return attributes.check_value(name, value)


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
        raise AttributeConflict(f"The image has no attribute '{name}' to {operation.op}.")
    if operation.op == "remove":
        del properties[name]
        return
    properties[name] = attributes.check_property(name, operation.value)
