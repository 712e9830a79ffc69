"""The image-tagging operations of every API family, each one write transaction's work.

Each ``plan_*`` function checks a request's tags and returns the :data:`TagWrite` that carries
it out, which the service runs in a transaction of its own (``Database.write_tags``). Checking
first means a refused request costs no lock. Every write reads the image's tags under its write
lock (:func:`~.write_path.locked_image_tags`) and hands the desired set to
:func:`~.write_path.replace_image_tags`, the one write path, so the 10-tag limit and the core
endpoint's aggregate hold whichever API wrote. Functions named ``*_tx`` run inside that
transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from imstags.domain.images.records import is_well_formed_id
from imstags.domain.images.tag_list import check_native_tag
from imstags.domain.tags.native import parse_native_tag
from imstags.domain.tags.rules import (
    KEY_MAX_LENGTH,
    VALUE_MAX_LENGTH,
    TagFilter,
    to_nfc,
    validate_tag,
    validate_tag_filters,
    validate_tags_to_write,
)
from imstags.domain.tags.write_path import image_tags, locked_image_tags, replace_image_tags
from imstags.errors import BadRequest, ImageNotFound, InvalidImageId, InvalidTag, TagNotFound
from imstags.storage.models import Image
from imstags.storage.tag_rows import TagRows
from imstags.storage.visibility import visible_to

ACTIONS = ("create", "delete")
# The ``tag`` string of PUT /v1/cloudimages/tags is "key.value" (image_tag_format.rst).
DOTTED_SEPARATOR = "."

TagWrite = Callable[[TagRows], object]
"""One write transaction's work. A transaction that loses a race is retried whole, so the
work may run more than once: it keeps no state between runs."""


# --- reading ---------------------------------------------------------------------------------


def visible_image_tags(session: Session, project_id: str, image_id: str) -> list[tuple[str, str]]:
    """``GET /v2/{project_id}/images/{image_id}/tags``: the image's tags, by key."""
    if not _image_exists(session, project_id, image_id):
        raise ImageNotFound()
    return sorted(image_tags(session, image_id).items())


def _image_exists(session: Session, project_id: str, image_id: str) -> bool:
    found = session.scalar(select(Image.id).where(Image.id == image_id, visible_to(project_id)))
    return found is not None


# --- IMS key/value tags ----------------------------------------------------------------------


def plan_batch_action(
    project_id: str, image_id: str, action: str, tags: Sequence[tuple[object, object]]
) -> TagWrite:
    """``POST /v2/{project_id}/images/{image_id}/tags/action``: idempotent create or delete.

    ``create`` adds or overwrites by key (same key and value: nothing happens); ``delete``
    removes a key when its value matches or when no value is given, and ignores tags the image
    does not have. The action name is case-sensitive; keys must be unique in either case.
    """
    if action not in ACTIONS:
        raise BadRequest(f"The action must be 'create' or 'delete', not '{action}'.")
    if not tags:
        raise BadRequest("The tags list must not be empty.")
    if action == "create":
        to_write = validate_tags_to_write(tags)
        return lambda rows: add_tags_tx(rows, project_id, image_id, to_write)
    filters = _unique_filters(validate_tag_filters(tags))
    return lambda rows: delete_tags_tx(rows, project_id, image_id, filters)


def plan_add_tag(project_id: str, image_id: str, key: object, value: object) -> TagWrite:
    """``POST /v2/{project_id}/images/{image_id}/tags``: add or overwrite one tag."""
    tag_key, tag_value = validate_tag(key, value)
    return lambda rows: add_tags_tx(rows, project_id, image_id, {tag_key: tag_value})


def plan_delete_key(project_id: str, image_id: str, key: str) -> TagWrite:
    """``DELETE /v2/{project_id}/images/{image_id}/tags/{key}``: not idempotent.

    The key is not checked for characters or length ("to be compatible with remaining
    tags"); a key the image does not have is a 404.
    """
    return lambda rows: _delete_key_tx(rows, project_id, image_id, to_nfc(key))


def _delete_key_tx(rows: TagRows, project_id: str, image_id: str, key: str) -> None:
    current = locked_image_tags(rows, project_id, image_id)
    if key not in current:
        raise TagNotFound(f"The image has no tag with the key '{key}'.")
    remaining = {k: v for k, v in current.items() if k != key}
    replace_image_tags(rows, project_id, image_id, current, remaining)


def plan_batch_delete(
    project_id: str, image_id: str, tags: Sequence[tuple[object, object]]
) -> TagWrite:
    """``DELETE /v1/{project_id}/cloudimages/{image_id}/tags/delete`` (the SDK's
    BatchDeleteTags): the delete half of the batch action, with the same lenient rules."""
    if not tags:
        raise BadRequest("The tags list must not be empty.")
    filters = _unique_filters(validate_tag_filters(tags))
    return lambda rows: delete_tags_tx(rows, project_id, image_id, filters)


def _unique_filters(filters: list[TagFilter]) -> list[TagFilter]:
    seen: set[str] = set()
    for tag in filters:
        if tag.key in seen:
            raise InvalidTag(f"The tag key '{tag.key}' occurs more than once in the request.")
        seen.add(tag.key)
    return filters


def add_tags_tx(rows: TagRows, project_id: str, image_id: str, tags: dict[str, str]) -> bool:
    current = locked_image_tags(rows, project_id, image_id)
    return replace_image_tags(rows, project_id, image_id, current, {**current, **tags})


def delete_tags_tx(
    rows: TagRows, project_id: str, image_id: str, filters: Sequence[TagFilter]
) -> bool:
    current = locked_image_tags(rows, project_id, image_id)
    desired = dict(current)
    for tag in filters:
        # Keys and values are stored trimmed, so a filter matches on its trimmed form.
        key = tag.key.strip()
        value = None if tag.value is None else tag.value.strip()
        if key in desired and value in (None, desired[key]):
            del desired[key]
    return replace_image_tags(rows, project_id, image_id, current, desired)


# --- PUT /v1/cloudimages/tags ----------------------------------------------------------------


def is_plain_tag_text(text: str) -> bool:
    """Only letters, digits, ``_`` and ``-`` (image_tag_format.rst, for ``tag`` strings)."""
    return all(ch.isalnum() or ch in "_-" for ch in text)


def parse_dotted_tag(tag: str) -> tuple[str, str]:
    """``"key.value"``, split on the first ``.``; a string without ``.`` is a key-only tag.

    Key 1-36 and value 0-43 characters, each only letters, digits, ``_`` and ``-``.
    """
    key, _, value = to_nfc(tag).partition(DOTTED_SEPARATOR)
    if not key:
        raise InvalidTag("The tag must be 'key.value' with a non-empty key.")
    if len(key) > KEY_MAX_LENGTH:
        raise InvalidTag(f"The tag key '{key}' is longer than {KEY_MAX_LENGTH} characters.")
    if len(value) > VALUE_MAX_LENGTH:
        raise InvalidTag(f"The tag value is longer than {VALUE_MAX_LENGTH} characters.")
    if not is_plain_tag_text(key) or not is_plain_tag_text(value):
        raise InvalidTag(
            "A 'key.value' tag may contain only letters, digits, underscores and hyphens."
        )
    return key, value


def plan_add_or_modify(
    project_id: str, image_id: str, tag: str | None, image_tag: tuple[object, object] | None
) -> TagWrite:
    """``PUT /v1/cloudimages/tags``: one tag, given as ``tag`` or as ``image_tag``.

    The project is the caller's; an image of another project is not found.
    """
    if not is_well_formed_id(image_id):
        raise InvalidImageId(f"The image ID '{image_id}' is not a UUID.")
    if tag is not None and image_tag is None:
        key, value = parse_dotted_tag(tag)
    elif image_tag is not None and tag is None:
        key, value = validate_tag(*image_tag)
    else:
        raise BadRequest("Give exactly one of 'tag' and 'image_tag'.")
    return lambda rows: add_tags_tx(rows, project_id, image_id, {key: value})


# --- native OpenStack string tags ------------------------------------------------------------


def plan_native_add(project_id: str, image_id: str, tag: str) -> TagWrite:
    """``PUT /v2/images/{image_id}/tags/{tag}``: idempotent; ``k=v`` overwrites key k. The
    tag follows the one rule of every native path (:func:`check_native_tag`)."""
    key, value = check_native_tag(tag)
    return lambda rows: add_tags_tx(rows, project_id, image_id, {key: value})


def plan_native_delete(project_id: str, image_id: str, tag: str) -> TagWrite:
    """``DELETE /v2/images/{image_id}/tags/{tag}``: the tag as the image lists it, or 404.

    ``k=v`` matches key k only while its value is v, and ``k`` only the key-only tag k, so
    that deleting a string the image does not list is a 404 as in Glance. Characters are not
    checked, so that any listed tag can be deleted.
    """
    key, value = parse_native_tag(to_nfc(tag))
    return lambda rows: _delete_exact_tx(rows, project_id, image_id, key, value, tag)


def _delete_exact_tx(
    rows: TagRows, project_id: str, image_id: str, key: str, value: str, tag: str
) -> None:
    current = locked_image_tags(rows, project_id, image_id)
    if current.get(key) != value:
        raise TagNotFound(f"The image has no tag '{tag}'.")
    remaining = {k: v for k, v in current.items() if k != key}
    replace_image_tags(rows, project_id, image_id, current, remaining)
