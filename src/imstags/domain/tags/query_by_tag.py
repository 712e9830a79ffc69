"""``POST /v2/{project_id}/images/resource_instances/action``: images by tag, filtered or counted.

The whole query is one SQL statement. Each tag condition is a sub-select of image ids from
``image_tags`` restricted to the project and the key (and values), which the
``(project_id, key, value)`` index answers without touching other projects' rows or the
images that do not carry the key; images are never loaded into Python to be filtered.

Semantics (querying_images_by_tag.rst): ``tags`` - the image has every listed tag;
``tags_any`` - at least one; ``not_tags`` - not every one; ``not_tags_any`` - none. A tag
with ``values`` matches when the image's value is any of them, with an empty ``values`` list
whatever the value. ``without_any_tag`` selects untagged images and overrides the four lists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    func,
    not_,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session

from imstags.domain.tags.native import NATIVE_TAG_MAX_LENGTH
from imstags.domain.tags.rules import to_nfc
from imstags.domain.tags.write_path import tags_of_images
from imstags.errors import BadRequest, InvalidTag
from imstags.storage.models import Image, ImageTag, TagCount
from imstags.storage.text_match import contains_text
from imstags.storage.visibility import visible_to

QUERY_ACTIONS = ("filter", "count")
# Up to this many matches of a single tag, a page is cut from all of them sorted (about 10 us
# a match on SQLite); beyond it, walking images in order and probing each (about 7 us an
# image, limit / share of them) is cheaper. Measured at 300,000 images of workload W.
SORT_MATCHES_LIMIT = 5000
MAX_QUERY_KEYS = 10
MAX_QUERY_VALUES = 10
# The reference says 128 for keys; native tags have keys up to 255 characters, and every tag
# that can be written must be one that can be queried.
QUERY_KEY_MAX_LENGTH = NATIVE_TAG_MAX_LENGTH
QUERY_VALUE_MAX_LENGTH = 255
MATCH_VALUE_MAX_LENGTH = 255
MATCH_KEYS = ("resource_name", "resource_id")
DEFAULT_MATCH_LIMIT = 10
MAX_MATCH_LIMIT = 1000
TAG_LISTS = ("tags", "tags_any", "not_tags", "not_tags_any")
INTEGER = re.compile(r"-?\d{1,18}")


@dataclass(frozen=True)
class TagCondition:
    key: str
    values: tuple[str, ...]  # empty: any value


@dataclass(frozen=True)
class TagMatchQuery:
    action: str
    tags: tuple[TagCondition, ...] = ()
    tags_any: tuple[TagCondition, ...] = ()
    not_tags: tuple[TagCondition, ...] = ()
    not_tags_any: tuple[TagCondition, ...] = ()
    without_any_tag: bool = False
    matches: dict[str, str] = field(default_factory=dict)
    limit: int = DEFAULT_MATCH_LIMIT
    offset: int = 0


@dataclass(frozen=True)
class MatchedImage:
    image_id: str
    name: str
    status: str
    tags: list[tuple[str, str]]


@dataclass(frozen=True)
class TagMatchResult:
    total_count: int
    resources: list[MatchedImage] | None  # None for "count"


# --- validation ------------------------------------------------------------------------------


def parse_tag_match_query(body: Mapping[str, Any]) -> TagMatchQuery:
    """Check every limit the page states; ``body`` holds the request's fields as sent."""
    action = body.get("action")
    if action not in QUERY_ACTIONS:
        raise BadRequest(f"The action must be 'filter' or 'count', not '{action}'.")
    lists = {name: _tag_conditions(name, body.get(name)) for name in TAG_LISTS}
    without = bool(body.get("without_any_tag") or False)
    matches = _matches(body.get("matches"))
    limit, offset = DEFAULT_MATCH_LIMIT, 0
    if action == "filter":  # both are "invalid" (ignored) when counting
        limit = _integer("limit", body.get("limit"), DEFAULT_MATCH_LIMIT, 1, MAX_MATCH_LIMIT)
        offset = _integer("offset", body.get("offset"), 0, 0, None)
    return TagMatchQuery(
        action=action,
        without_any_tag=without,
        matches=matches,
        limit=limit,
        offset=offset,
        **lists,
    )


def _tag_conditions(name: str, entries: Sequence[Any] | None) -> tuple[TagCondition, ...]:
    if entries is None:
        return ()
    if not entries:
        raise InvalidTag(f"'{name}' must not be an empty list; leave it out instead.")
    if len(entries) > MAX_QUERY_KEYS:
        raise InvalidTag(f"'{name}' may name at most {MAX_QUERY_KEYS} tag keys.")
    conditions: list[TagCondition] = []
    keys: set[str] = set()
    for entry in entries:
        key, values = to_nfc(entry["key"]), [to_nfc(value) for value in entry["values"]]
        if not key or not key.strip():
            raise InvalidTag(f"A tag key in '{name}' cannot be empty.")
        if len(key) > QUERY_KEY_MAX_LENGTH:
            raise InvalidTag(
                f"A tag key in '{name}' is longer than {QUERY_KEY_MAX_LENGTH} characters."
            )
        if key in keys:
            raise InvalidTag(f"The tag key '{key}' occurs more than once in '{name}'.")
        keys.add(key)
        if len(values) > MAX_QUERY_VALUES:
            raise InvalidTag(
                f"The tag key '{key}' in '{name}' has more than {MAX_QUERY_VALUES} values."
            )
        if len(set(values)) != len(values):
            raise InvalidTag(f"The values of tag key '{key}' in '{name}' must be unique.")
        for value in values:
            if len(value) > QUERY_VALUE_MAX_LENGTH:
                raise InvalidTag(
                    f"A value of tag key '{key}' in '{name}' is longer than "
                    f"{QUERY_VALUE_MAX_LENGTH} characters."
                )
        conditions.append(TagCondition(key, tuple(values)))
    return tuple(conditions)


def _matches(entries: Sequence[Any] | None) -> dict[str, str]:
    if entries is None:
        return {}
    if not entries:
        raise BadRequest("'matches' must not be an empty list; leave it out instead.")
    matches: dict[str, str] = {}
    for entry in entries:
        key, value = entry["key"], entry["value"]
        if key not in MATCH_KEYS:
            raise BadRequest(f"A 'matches' key must be one of {', '.join(MATCH_KEYS)}.")
        if key in matches:
            raise BadRequest(f"The key '{key}' occurs more than once in 'matches'.")
        if len(value) > MATCH_VALUE_MAX_LENGTH:
            raise BadRequest(
                f"A 'matches' value is longer than {MATCH_VALUE_MAX_LENGTH} characters."
            )
        matches[key] = value
    return matches


def _integer(name: str, raw: object, default: int, low: int, high: int | None) -> int:
    """``limit`` and ``offset`` are strings in the reference; integers are accepted too."""
    if raw is None:
        return default
    if isinstance(raw, int) and not isinstance(raw, bool):
        number = raw
    elif isinstance(raw, str) and INTEGER.fullmatch(raw.strip()):
        number = int(raw.strip())
    else:
        raise BadRequest(f"'{name}' must be an integer.")
    if number < low or (high is not None and number > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise BadRequest(f"'{name}' must be {bounds}, not {number}.")
    return number


# --- SQL -------------------------------------------------------------------------------------


def _carrying_ids(project_id: str, conditions: Sequence[TagCondition]) -> Select[Any]:
    """Ids of the project's images carrying any of these tags, one index range each."""
    clauses = []
    for cond in conditions:
        clause = ImageTag.key == cond.key
        if cond.values:
            clause = and_(clause, ImageTag.value.in_(cond.values))
        clauses.append(clause)
    return select(ImageTag.image_id).where(ImageTag.project_id == project_id, or_(*clauses))


def _carrying(project_id: str, conditions: Sequence[TagCondition]) -> ColumnElement[bool]:
    """``images.id IN (ids of images carrying any of these tags)``."""
    return Image.id.in_(_carrying_ids(project_id, conditions))


def _has_all(project_id: str, conditions: Sequence[TagCondition]) -> ColumnElement[bool]:
    return and_(*(_carrying(project_id, [cond]) for cond in conditions))


def where_clause(project_id: str, query: TagMatchQuery) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = [visible_to(project_id)]
    if query.without_any_tag:
        clauses.append(~exists().where(ImageTag.image_id == Image.id))
    else:
        if query.tags:
            clauses.append(_has_all(project_id, query.tags))
        if query.tags_any:
            clauses.append(_carrying(project_id, query.tags_any))
        if query.not_tags:
            clauses.append(not_(_has_all(project_id, query.not_tags)))
        if query.not_tags_any:
            clauses.append(not_(_carrying(project_id, query.not_tags_any)))
    return and_(*clauses)


def _match_clauses(matches: dict[str, str]) -> list[ColumnElement[bool]]:
    """``resource_name``: substring, case-sensitive on both databases (an empty value: the
    empty name exactly); ``resource_id``: exact."""
    clauses: list[ColumnElement[bool]] = []
    if "resource_id" in matches:
        clauses.append(Image.id == matches["resource_id"])
    if "resource_name" in matches:
        name = matches["resource_name"]
        if not name:
            clauses.append(Image.name == name)
        else:
            clauses.append(contains_text(Image.name, name))
    return clauses or [true()]


def _single_tag(query: TagMatchQuery) -> TagCondition | None:
    """The query's one condition, when it is a single positive tag and nothing else."""
    others = (query.not_tags, query.not_tags_any, query.without_any_tag, query.matches)
    if any(others):
        return None
    conditions = query.tags + query.tags_any
    return conditions[0] if len(conditions) == 1 else None


def _counted(session: Session, project_id: str, cond: TagCondition) -> int:
    """Images of the project carrying ``cond``, read from the exact ``tag_counts`` aggregate.

    An image has one value per key, so the counts of a key's values add up without overlap.
    """
    stmt = select(func.coalesce(func.sum(TagCount.image_count), 0)).where(
        TagCount.project_id == project_id, TagCount.key == cond.key
    )
    if cond.values:
        stmt = stmt.where(TagCount.value.in_(cond.values))
    return int(session.scalar(stmt) or 0)


def run_tag_match_query(session: Session, project_id: str, query: TagMatchQuery) -> TagMatchResult:
    """Count and page the matches.

    The common query, one tag, is planned from the aggregate (as image listings are, see
    :mod:`imstags.domain.images.listing`): its count is read from ``tag_counts`` instead of being
    counted image by image. With named values, its page is read from the
    ``(project_id, key, value, created_at, image_id)`` index, already in page order, a
    short range per value (:func:`_page_by_values`). With any value, when few images carry
    the key the page is cut from their ids sorted, and when many do, images are read in order
    and each is checked by primary key, which fills a page after about ``limit / share``
    images.
    """
    single = _single_tag(query)
    where = and_(where_clause(project_id, query), *_match_clauses(query.matches))
    if single is None:
        total = session.scalar(select(func.count()).select_from(Image).where(where)) or 0
    else:
        total = _counted(session, project_id, single)
    if query.action == "count":
        return TagMatchResult(total, None)
    if query.offset >= total:
        return TagMatchResult(total, [])
    if single is not None and single.values:
        page = _page_by_values(session, project_id, single, query.limit, query.offset)
        return TagMatchResult(total, _found(session, project_id, page))
    if single is not None:
        if total <= SORT_MATCHES_LIMIT:
            matches = list(session.scalars(_carrying_ids(project_id, [single])))
            where = and_(Image.id.in_(matches), visible_to(project_id, by_index=False))
        else:  # common: read images in order, check each by image_tags' primary key
            tag = and_(ImageTag.image_id == Image.id, ImageTag.key == single.key)
            where = and_(visible_to(project_id), exists().where(tag))
    ids = session.scalars(
        select(Image.id)
        .where(where)
        .order_by(Image.created_at.desc(), Image.id.desc())
        .limit(query.limit)
        .offset(query.offset)
    ).all()
    return TagMatchResult(total, _found(session, project_id, list(ids)))


def _page_by_values(
    session: Session, project_id: str, cond: TagCondition, limit: int, offset: int
) -> list[str]:
    """Ids of one page of the images whose ``cond.key`` has one of ``cond.values``, newest
    first, read from ``image_tags``' by-tag index (created_at is copied there from the image).

    Each value's range is read in order and cut at ``offset + limit``; the ranges are merged
    and the page cut from the merge. The cost grows with the page's end and the number of
    values (at most ten), never with the number of images or matches.
    """
    end = offset + limit
    ranges = [
        select(ImageTag.image_id, ImageTag.created_at)
        .where(ImageTag.project_id == project_id, ImageTag.key == cond.key, ImageTag.value == value)
        .order_by(ImageTag.created_at.desc(), ImageTag.image_id.desc())
        .limit(end)
        .subquery()
        for value in cond.values
    ]
    merged = union_all(*(select(r.c.image_id, r.c.created_at) for r in ranges)).subquery()
    return list(
        session.scalars(
            select(merged.c.image_id)
            .order_by(merged.c.created_at.desc(), merged.c.image_id.desc())
            .limit(limit)
            .offset(offset)
        )
    )


def _found(session: Session, project_id: str, ids: list[str]) -> list[MatchedImage]:
    """The page's images with their tags, in the order of ``ids``."""
    if not ids:
        return []
    rows = {
        row.id: row
        for row in session.execute(
            select(Image.id, Image.name, Image.status).where(
                Image.id.in_(ids), visible_to(project_id, by_index=False)
            )
        )
    }
    tags = tags_of_images(session, list(rows))
    return [
        MatchedImage(
            image_id, rows[image_id].name, rows[image_id].status, sorted(tags[image_id].items())
        )
        for image_id in ids
        if image_id in rows
    ]
