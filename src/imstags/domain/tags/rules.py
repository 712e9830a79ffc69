"""The rules a tag must follow to be written or named for deletion (image_tags limits).

The reference trims keys and values, limits them to 36 and 43 characters and an image to 10
tags; deleting is lenient (only lengths are checked). ``=`` is refused in keys because
"key=value" is how a tag reads through the native OpenStack API (:mod:`.native`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from imstags.errors import InvalidTag

MAX_TAGS_PER_IMAGE = 10
_NATIVE_SEPARATOR = "="  # see .native; a key cannot hold it
KEY_MAX_LENGTH = 36
VALUE_MAX_LENGTH = 43
# Deleting is lenient: only lengths are checked, and longer ones than for writing, so that a
# native tag (up to 255 characters in all, key and value each up to 255) can be named for
# deletion through the IMS APIs too (the reference's 127 for keys is too short for those).
DELETE_KEY_MAX_LENGTH = 255
DELETE_VALUE_MAX_LENGTH = 255
# Unicode general categories no tag may contain (docs/decisions.md, "Tag text"): controls
# (C0, DEL, C1), format characters (bidirectional overrides and isolates, zero-width
# characters, the byte-order mark, soft hyphen...), surrogates, line and paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


@dataclass(frozen=True)
class TagFilter:
    """A tag named for deletion: ``value=None`` matches the key whatever its value."""

    key: str
    value: str | None = None


def has_refused_chars(text: str) -> bool:
    """Does the text hold a control, invisible format or separator character?

    ASCII (nearly every tag) is checked without the Unicode database.
    """
    if text.isascii():
        return any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)
    return any(unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in text)


def to_nfc(text: str) -> str:
    """The one spelling a tag is stored and looked up in: Unicode NFC.

    Without it, "é" as one code point and as "e" plus a combining accent would be two keys
    that look the same. Every path that writes, deletes or queries tags passes its text here.
    """
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


def validate_tag(key: object, value: object) -> tuple[str, str]:
    """Check one key/value pair to be written; returns it with outer spaces removed.

    The reference trims leading and trailing spaces of keys and values and limits them to 36
    and 43 characters; a key must not be empty. Both are normalised to NFC first; control,
    invisible format and separator characters are refused (:func:`has_refused_chars`), and so
    is ``=`` in a key, since "key=value" is how the tag reads through the native OpenStack API.
    """
    if not isinstance(key, str):
        raise InvalidTag("The tag key must be a string.")
    if value is None:
        raise InvalidTag(f"The tag '{key}' has no value; a key-only tag has the value \"\".")
    if not isinstance(value, str):
        raise InvalidTag("The tag value must be a string.")
    key, value = to_nfc(key).strip(), to_nfc(value).strip()
    if not key:
        raise InvalidTag("The tag key cannot be empty.")
    if len(key) > KEY_MAX_LENGTH:
        raise InvalidTag(f"The tag key '{key}' is longer than {KEY_MAX_LENGTH} characters.")
    if len(value) > VALUE_MAX_LENGTH:
        raise InvalidTag(
            f"The value of tag key '{key}' is longer than {VALUE_MAX_LENGTH} characters."
        )
    if _NATIVE_SEPARATOR in key:
        raise InvalidTag(f"The tag key '{key}' must not contain '{_NATIVE_SEPARATOR}'.")
    if has_refused_chars(key) or has_refused_chars(value):
        raise InvalidTag(
            "The tag key and value must not contain control or invisible formatting characters."
        )
    return key, value


def validate_tags_to_write(tags: Iterable[tuple[object, object]]) -> dict[str, str]:
    """Validate a request's tags to add: keys must be unique within the request."""
    result: dict[str, str] = {}
    for raw_key, raw_value in tags:
        key, value = validate_tag(raw_key, raw_value)
        if key in result:
            raise InvalidTag(f"The tag key '{key}' occurs more than once in the request.")
        result[key] = value
    return result


def validate_tag_filters(tags: Iterable[tuple[object, object]]) -> list[TagFilter]:
    """Validate a request's tags to delete: characters are not checked, lengths are; the
    text is normalised to NFC as written tags are, so any spelling names the stored tag."""
    filters: list[TagFilter] = []
    for key, value in tags:
        if not isinstance(key, str) or not key.strip():
            raise InvalidTag("The tag key cannot be empty.")
        if len(key) > DELETE_KEY_MAX_LENGTH:
            raise InvalidTag(f"The tag key is longer than {DELETE_KEY_MAX_LENGTH} characters.")
        if value is not None and not isinstance(value, str):
            raise InvalidTag("The tag value must be a string.")
        if value is not None and len(value) > DELETE_VALUE_MAX_LENGTH:
            raise InvalidTag(f"The tag value is longer than {DELETE_VALUE_MAX_LENGTH} characters.")
        filters.append(TagFilter(to_nfc(key), None if value is None else to_nfc(value)))
    return filters
