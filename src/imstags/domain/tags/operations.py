"""The image-tagging operations of every API family, each one write transaction's work.

Each ``plan_*`` function checks a request's tags and returns the :class:`~.change.TagChange`
that carries it out: what to add, what to remove, what must be there, as data. The service runs
it as one transaction of its own, through the one write path in Python
(:func:`~.write_path.replace_image_tags`, ``Database.write_tags``) or as one call of
PostgreSQL's tag-change function, with the same answers; so the 10-tag limit and the core
endpoint's aggregate hold whichever API wrote. Checking first means a refused request costs no
lock.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from imstags.domain.images.records import is_well_formed_id
from imstags.domain.images.tag_list import check_native_tag
from imstags.domain.tags.change import TagChange
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
from imstags.domain.tags.write_path import image_tags
from imstags.errors import BadRequest, ImageNotFound, InvalidImageId, InvalidTag
from imstags.storage.models import Image
from imstags.storage.visibility import visible_to

ACTIONS = ("create", "delete")
# The ``tag`` string of PUT /v1/cloudimages/tags is "key.value" (image_tag_format.rst).
DOTTED_SEPARATOR = "."


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
) -> TagChange:
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
        return TagChange(project_id, image_id, upserts=validate_tags_to_write(tags))
    return _removing(project_id, image_id, _unique_filters(validate_tag_filters(tags)))


def plan_add_tag(project_id: str, image_id: str, key: object, value: object) -> TagChange:
    """``POST /v2/{project_id}/images/{image_id}/tags``: add or overwrite one tag."""
    tag_key, tag_value = validate_tag(key, value)
    return TagChange(project_id, image_id, upserts={tag_key: tag_value})


def plan_delete_key(project_id: str, image_id: str, key: str) -> TagChange:
    """``DELETE /v2/{project_id}/images/{image_id}/tags/{key}``: not idempotent.

    The key is not checked for characters or length ("to be compatible with remaining
    tags"); a key the image does not have is a 404.
    """
    key = to_nfc(key)
    return TagChange(
        project_id,
        image_id,
        removals=((key, None),),
        required=(key, None),
        missing_message=f"The image has no tag with the key '{key}'.",
    )


def plan_batch_delete(
    project_id: str, image_id: str, tags: Sequence[tuple[object, object]]
) -> TagChange:
    """``DELETE /v1/{project_id}/cloudimages/{image_id}/tags/delete`` (the SDK's
    BatchDeleteTags): the delete half of the batch action, with the same lenient rules."""
    if not tags:
        raise BadRequest("The tags list must not be empty.")
    return _removing(project_id, image_id, _unique_filters(validate_tag_filters(tags)))


def _removing(project_id: str, image_id: str, filters: Sequence[TagFilter]) -> TagChange:
    """The lenient delete: each filter removes its key when the value matches or none is
    given; tags the image lacks are ignored. Keys and values are stored trimmed, so a filter
    matches on its trimmed form."""
    removals = tuple(
        (tag.key.strip(), None if tag.value is None else tag.value.strip()) for tag in filters
    )
    return TagChange(project_id, image_id, removals=removals)


def _unique_filters(filters: list[TagFilter]) -> list[TagFilter]:
    seen: set[str] = set()
    for tag in filters:
        if tag.key in seen:
            raise InvalidTag(f"The tag key '{tag.key}' occurs more than once in the request.")
        seen.add(tag.key)
    return filters


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
) -> TagChange:
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
    return TagChange(project_id, image_id, upserts={key: value})


# --- native OpenStack string tags ------------------------------------------------------------


def plan_native_add(project_id: str, image_id: str, tag: str) -> TagChange:
    """``PUT /v2/images/{image_id}/tags/{tag}``: idempotent; ``k=v`` overwrites key k. The
    tag follows the one rule of every native path (:func:`check_native_tag`)."""
    key, value = check_native_tag(tag)
    return TagChange(project_id, image_id, upserts={key: value})


def plan_native_delete(project_id: str, image_id: str, tag: str) -> TagChange:
    """``DELETE /v2/images/{image_id}/tags/{tag}``: the tag as the image lists it, or 404.

    ``k=v`` matches key k only while its value is v, and ``k`` only the key-only tag k, so
    that deleting a string the image does not list is a 404 as in Glance. Characters are not
    checked, so that any listed tag can be deleted.
    """
    key, value = parse_native_tag(to_nfc(tag))
    return TagChange(
        project_id,
        image_id,
        removals=((key, None),),
        required=(key, value),
        missing_message=f"The image has no tag '{tag}'.",
    )
