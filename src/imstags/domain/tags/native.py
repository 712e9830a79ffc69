"""Native OpenStack string tags and the ``/v1`` dotted form, mapped onto IMS key/value pairs.

A native tag ``"k=v"`` is the IMS key ``k`` with value ``v``; ``"k"`` is ``k`` with the empty
value (docs/decisions.md).
"""

from __future__ import annotations

from imstags.domain.tags.rules import has_refused_chars, to_nfc
from imstags.errors import InvalidTag

# A native OpenStack tag is one string; "key=value" maps to an IMS key/value pair.
NATIVE_SEPARATOR = "="
NATIVE_TAG_MAX_LENGTH = 255


def parse_native_tag(tag: str) -> tuple[str, str]:
    """``"k=v"`` is key k with value v; ``"k"`` is key k with the empty value."""
    key, _, value = tag.partition(NATIVE_SEPARATOR)
    return key, value


def format_native_tag(key: str, value: str) -> str:
    return f"{key}{NATIVE_SEPARATOR}{value}" if value else key


def validate_native_tag(tag: object) -> tuple[str, str]:
    """A native tag string (image creation, PATCH, native PUT): ``"k=v"`` or ``"k"``.

    The native format limits the whole string to 1-255 characters (image_tag_format.rst,
    creating_image_metadata); the IMS limits of 36/43 are those of tags written through the
    IMS APIs. Key and value lose their outer spaces, as IMS tags do; the key must not be
    empty; the text is normalised to NFC and control or invisible format characters are
    refused, as for IMS tags (:mod:`.rules`).
    """
    if not isinstance(tag, str) or not tag:
        raise InvalidTag("A tag must be a non-empty string.")
    tag = to_nfc(tag)
    if len(tag) > NATIVE_TAG_MAX_LENGTH:
        raise InvalidTag(f"A tag is 1 to {NATIVE_TAG_MAX_LENGTH} characters long.")
    key, value = (part.strip() for part in parse_native_tag(tag))
    if not key:
        raise InvalidTag("The key of a tag (before any '=') must not be empty.")
    if has_refused_chars(tag):
        raise InvalidTag("A tag must not contain control or invisible formatting characters.")
    return key, value
