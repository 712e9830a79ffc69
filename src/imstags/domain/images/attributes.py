"""What an image attribute may hold, shared by creating and modifying images.

An image has base attributes with columns of their own (``name``, ``min_ram``, the IMS
``__imagetype``/``__os_type``/``__platform``/``__os_version``, ...) and any number of additional
string properties (``__os_bit``, ``__description``, ``owner_specified.openstack.md5``, ...)
kept in one JSON column. Values and defaults follow common_parameters/image_attributes.rst and
the native create page; lengths never exceed what the columns hold, so that PostgreSQL never
refuses a value SQLite would have taken.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from imstags.errors import (
    BadRequest,
    DescriptionTooLong,
    Forbidden,
    ImageNameMissing,
    ImageNameTooLong,
    ImsError,
    InvalidDescription,
    InvalidFirmwareType,
    InvalidImageName,
    InvalidImageType,
    InvalidOsType,
    InvalidSize,
    UnsupportedDiskFormat,
)

# Attributes the server sets; a client that tries to write one gets 403, as from Glance.
READ_ONLY = frozenset(
    {
        "id", "status", "created_at", "updated_at", "owner", "checksum", "size",
        "virtual_size", "self", "file", "schema", "direct_url", "locations",
        "__isregistered", "os_hash_algo", "os_hash_value", "deleted", "deleted_at",
    }
)  # fmt: skip
RESERVED_PREFIX = "os_glance"
# Base attributes with columns, by their API name -> column name.
COLUMNS = {
    "name": "name",
    "visibility": "visibility",
    "protected": "protected",
    "os_hidden": "os_hidden",
    "container_format": "container_format",
    "disk_format": "disk_format",
    "min_disk": "min_disk",
    "min_ram": "min_ram",
    "__imagetype": "image_type",
    "__os_type": "os_type",
    "__platform": "platform",
    "__os_version": "os_version",
    "virtual_env_type": "virtual_env_type",
}
DISK_FORMATS = (
    "zvhd2", "zvhd", "vhd", "raw", "qcow2", "vmdk", "vdi", "iso", "ami", "ari", "aki", "ploop",
)  # fmt: skip
CONTAINER_FORMATS = ("bare", "ovf", "ami", "ari", "aki", "ova", "docker", "compressed")
VISIBILITIES = ("private", "shared", "community", "public")
IMAGE_TYPES = ("private", "gold", "shared")
OS_TYPES = ("Linux", "Windows", "Other")
VIRTUAL_ENV_TYPES = ("FusionCompute", "Ironic", "DataImage", "IsoImage")
PLATFORMS = (
    "Windows", "Ubuntu", "Red Hat", "SUSE", "CentOS", "Debian", "OpenSUSE", "Oracle Linux",
    "Fedora", "Other", "CoreOS", "EulerOS",
)  # fmt: skip
FIRMWARE_TYPES = ("bios", "uefi")

NAME_MAX_LENGTH = 255  # the native create page; IMS's own pages say 128 (see ims_name_error)
IMS_NAME_MAX_LENGTH = 128
DESCRIPTION_MAX_LENGTH = 1024
PROPERTY_NAME_MAX_LENGTH = 255
PROPERTY_VALUE_MAX_LENGTH = 255
MAX_PROPERTIES = 128  # Glance's default image_property_quota
MIN_DISK_MAX_GB = 1024  # "1 GB to 1,024 GB"; 0 (Glance's default) means not specified
DEFAULT_OS_VERSION = "Other Linux(64 bit)"
# Column widths (storage/models.py) of the string columns above.
_COLUMN_WIDTHS = {"__os_type": 16, "__platform": 32, "__os_version": 128, "virtual_env_type": 32}
_IMS_NAME_RE = re.compile(r"^[\w\-. ]+$")


@dataclass
class ImageFields:
    """Validated attributes for a new image: column values and additional properties."""

    columns: dict[str, Any] = field(default_factory=dict)  # by API name
    properties: dict[str, str] = field(default_factory=dict)


def check_value(name: str, value: Any) -> Any:
    """Validate one writable attribute's value; returns it, normalised where that matters.

    Raises 403 for read-only attributes and 400 (IMG.0001, or the reference's specific code)
    for a value of the wrong type or outside its allowed set.
    """
    if name in READ_ONLY:
        raise Forbidden(f"Attribute '{name}' is read-only.")
    check_not_reserved(name)
    if name == "name":
        if not isinstance(value, str) or len(value) > NAME_MAX_LENGTH:
            raise ImageNameTooLong(
                f"name must be a string of at most {NAME_MAX_LENGTH} characters."
            )
        return value
    if name in ("protected", "os_hidden"):
        if not isinstance(value, bool):
            raise BadRequest(f"{name} must be a boolean.")
        return value
    if name in ("min_disk", "min_ram"):
        top = MIN_DISK_MAX_GB if name == "min_disk" else 2**31 - 1
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
            raise InvalidSize(f"{name} must be an integer from 0 to {top}.")
        return value
    if name in _ENUMS:
        allowed, error = _ENUMS[name]
        if value not in allowed:
            raise error(f"{name} must be one of: {', '.join(allowed)}.")
        return value
    if name in _COLUMN_WIDTHS:
        width = _COLUMN_WIDTHS[name]
        if not isinstance(value, str) or len(value) > width:
            raise BadRequest(f"{name} must be a string of at most {width} characters.")
        return value
    return check_property(name, value)


_ENUMS: dict[str, tuple[tuple[str, ...], type[ImsError]]] = {
    "disk_format": (DISK_FORMATS, UnsupportedDiskFormat),
    "container_format": (CONTAINER_FORMATS, BadRequest),
    "visibility": (VISIBILITIES, BadRequest),
    "__imagetype": (IMAGE_TYPES, InvalidImageType),
    "__os_type": (OS_TYPES, InvalidOsType),
    "virtual_env_type": (VIRTUAL_ENV_TYPES, BadRequest),
}


def check_not_reserved(name: str) -> None:
    """Glance keeps the ``os_glance`` namespace for itself (import and store bookkeeping), and
    refuses to let clients set, change or remove such properties: 403, as Glance answers."""
    if name.startswith(RESERVED_PREFIX):
        raise Forbidden(f"Attribute '{name}' is reserved.")


def check_property(name: str, value: Any) -> str:
    """An additional property: a non-empty name and a string value, both bounded."""
    if not name or len(name) > PROPERTY_NAME_MAX_LENGTH:
        raise BadRequest(f"A property name is 1 to {PROPERTY_NAME_MAX_LENGTH} characters.")
    if not isinstance(value, str):
        raise BadRequest(f"The value of property '{name}' must be a string.")
    if name == "__description":
        check_description(value)
    elif name == "hw_firmware_type" and value not in FIRMWARE_TYPES:
        raise InvalidFirmwareType()
    elif len(value) > PROPERTY_VALUE_MAX_LENGTH:
        raise BadRequest(
            f"The value of property '{name}' is longer than {PROPERTY_VALUE_MAX_LENGTH} characters."
        )
    return value


def check_description(value: str) -> None:
    if len(value) > DESCRIPTION_MAX_LENGTH:
        raise DescriptionTooLong()
    if any(ch in value for ch in "\r\n<>"):
        raise InvalidDescription()


def check_ims_name(value: Any) -> str:
    """The stricter name rule of the IMS extension API (image_attributes.rst)."""
    if not isinstance(value, str) or not value:
        raise ImageNameMissing()
    if len(value) > IMS_NAME_MAX_LENGTH:
        raise ImageNameTooLong()
    if value != value.strip() or not _IMS_NAME_RE.match(value):
        raise InvalidImageName()
    return value


def check_property_count(properties: Mapping[str, Any]) -> None:
    if len(properties) > MAX_PROPERTIES:
        raise BadRequest(f"An image can have at most {MAX_PROPERTIES} additional properties.")


def split_create_body(body: Mapping[str, Any]) -> ImageFields:
    """Validate a native create body (without ``id`` and ``tags``) into columns/properties.

    Creating image metadata allows only ``private`` visibility (creating_image_metadata).
    When ``__os_version`` is not given, the page's default ``Other Linux(64 bit)`` is used,
    and ``__os_type``, ``__platform`` and ``__os_bit`` are derived from the OS version unless
    given explicitly.
    """
    result = ImageFields()
    for name, value in body.items():
        checked = check_value(name, value)
        if name in COLUMNS:
            result.columns[name] = checked
        else:
            result.properties[name] = checked
    if result.columns.get("visibility", "private") != "private":
        raise BadRequest("When creating image metadata, visibility can only be private.")
    check_property_count(result.properties)
    os_version = result.columns.setdefault("__os_version", DEFAULT_OS_VERSION)
    os_type, platform, os_bit = derive_os(os_version)
    result.columns.setdefault("__os_type", os_type)
    result.columns.setdefault("__platform", platform)
    if os_bit is not None:
        result.properties.setdefault("__os_bit", os_bit)
    return result


def derive_os(os_version: str) -> tuple[str, str, str | None]:
    """(``__os_type``, ``__platform``, ``__os_bit``) as values_of_related_parameters ties
    them to an ``__os_version``: the platform is the leading name, Windows is the only
    non-Linux family, the bitness is in the text."""
    platform = next(
        (p for p in sorted(PLATFORMS, key=len, reverse=True) if os_version.startswith(p)),
        "Other",
    )
    if os_version.startswith("Other"):
        platform = "Other"
    os_type = "Windows" if platform == "Windows" else "Linux"
    bits = re.search(r"(32|64)\s?bit", os_version)
    return os_type, platform, bits.group(1) if bits else None
