"""A whole native tag list (``POST /v2/images``, a JSON patch of ``/tags``) turned into the
image's one value per key.

A list may name one key twice: ``openstack image set --tag env=staging`` on an image tagged
``env=prod`` sends both, in an order that changes from run to run. Keeping "the last one" made
the command a coin toss, so the value that is new to the image wins, whatever its place; two
or more new values for one key cannot both win and the request is refused, naming the key
(docs/decisions.md).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping

from imstags.domain.tags.native import NATIVE_SEPARATOR, validate_native_tag
from imstags.errors import InvalidTag


def resolve_tag_list(raw_tags: Iterable[object], current: Mapping[str, str]) -> dict[str, str]:
    """The key -> value tags that a native list asks for, given the image's ``current`` ones
    (empty for a new image); every element follows :func:`check_native_tag`."""
    values: dict[str, list[str]] = {}
    for raw in raw_tags:
        key, value = check_native_tag(raw)
        found = values.setdefault(key, [])
        if value not in found:
            found.append(value)
    tags: dict[str, str] = {}
    for key, candidates in values.items():
        if len(candidates) == 1:
            tags[key] = candidates[0]
            continue
        new = [value for value in candidates if current.get(key) != value]
        if len(new) > 1:
            raise InvalidTag(
                f"The tag key '{key}' is given with {len(new)} new values "
                f"({', '.join(repr(v) for v in new)}); an image has one value per key."
            )
        tags[key] = new[0] if new else current[key]
    return tags


def check_native_tag(raw: object) -> tuple[str, str]:
    """The one rule of a native tag on every native path (create, PATCH, ``PUT .../tags``):
    1-255 characters, no control characters (:func:`validate_native_tag`), and it reads back
    as written. Any other character is allowed, as in Glance and in the IMS tag APIs, so
    that every tag an image lists can be sent back in a whole list (docs/decisions.md)."""
    key, value = validate_native_tag(raw)
    check_reads_back(raw, key, value)
    return key, value


def check_reads_back(raw: object, key: str, value: str) -> None:
    """A native tag is stored as the key/value pair it names and read back from that pair, so
    a string that the pair would render differently (``"k="`` reads as ``"k"``, ``" k"`` as
    ``"k"``) is refused: an idempotent tool would otherwise see a change on every run. The
    comparison is up to Unicode normalisation: every tag is stored in NFC (docs/decisions.md,
    "Tag text"), and an NFD spelling of the same text is the same tag, not a different one."""
    written = f"{key}{NATIVE_SEPARATOR}{value}" if value else key
    if not isinstance(raw, str) or unicodedata.normalize("NFC", raw) != written:
        raise InvalidTag(
            f"The tag {raw!r} would read back as {written!r}: write it as {written!r} "
            "(no empty value after '=', no spaces around the key or the value)."
        )
