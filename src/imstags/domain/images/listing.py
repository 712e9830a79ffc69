"""Image listings shared by the native ``GET /v2/images`` and IMS's ``GET /v2/cloudimages``.

A query is parsed once from the request's (name, value) pairs into SQL conditions, then run
as one statement: filters, tag joins, keyset paging after the marker, ``LIMIT n + 1`` to know
whether another page follows. Nothing is filtered in Python, so a page costs the same whatever
the size of the catalog.

Tags: ``tag=k=v`` is the IMS tag key ``k`` with value ``v``, ``tag=k`` the key ``k`` with the
empty value (the native mapping of :mod:`imstags.domain.tags.native`); several ``tag``
parameters must all match. The aggregate's exact counts pick the plan (see
:func:`_tag_plan`): a rare tag starts the query from its ``(project_id, key, value)`` index
entries, common ones are checked by primary key while the images are read in order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select
from sqlalchemy.orm import Session, aliased

from imstags.domain.images.attributes import COLUMNS
from imstags.domain.images.records import ImageRecord, is_well_formed_id
from imstags.domain.projects import visible_to
from imstags.domain.tags.native import NATIVE_TAG_MAX_LENGTH, parse_native_tag
from imstags.domain.tags.write_path import tags_of_images
from imstags.errors import BadRequest
from imstags.storage.models import Image, ImageTag, TagCount

MAX_PAGE_SIZE = 1000
NATIVE_DEFAULT_PAGE_SIZE = 25  # Glance's default
IMS_DEFAULT_PAGE_SIZE = 500  # querying_images.rst
# A tag on at most this many of a project's images starts the query from its index entries.
DRIVING_TAG_LIMIT = 2000
SORT_COLUMNS: dict[str, Any] = {
    "name": Image.name,
    "container_format": Image.container_format,
    "disk_format": Image.disk_format,
    "status": Image.status,
    "id": Image.id,
    "size": func.coalesce(Image.size, -1),  # no image has data: sizes are null
    "created_at": Image.created_at,
    "updated_at": Image.updated_at,
    "min_disk": Image.min_disk,
    "min_ram": Image.min_ram,
}
_MARKER_VALUES: dict[str, Any] = {
    "size": lambda image: image.size if image.size is not None else -1
}
# Exact-match filters on columns, by query parameter.
_COLUMN_FILTERS: dict[str, Any] = {
    **{name: getattr(Image, column) for name, column in COLUMNS.items()},
    "id": Image.id,
    "status": Image.status,
    "owner": Image.project_id,
}
_INT_FILTERS = {"min_ram", "min_disk"}
_BOOL_FILTERS = {"protected", "os_hidden"}
_TIME_FILTERS = {"created_at": Image.created_at, "updated_at": Image.updated_at}
_TIME_OPS = {
    "gt": lambda c, v: c > v, "gte": lambda c, v: c >= v, "lt": lambda c, v: c < v,
    "lte": lambda c, v: c <= v, "eq": lambda c, v: c == v, "neq": lambda c, v: c != v,
}  # fmt: skip
_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")
# Parameters that never exclude one of a project's own images here.
_ALWAYS_TRUE = {"__isregistered": "true"}
# Parameters about things this catalog does not have: any value matches no image.
_NOTHING_MATCHES = {"member_status", "flavor_id"}
_CONTROL = {"limit", "marker", "sort_key", "sort_dir", "sort"}
# Property names usable as filters: what JSON paths on both databases take without quoting.
_PROPERTY_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,255}")


@dataclass
class ImageListQuery:
    project_id: str
    conditions: list[ColumnElement[bool]] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)
    sort: list[tuple[str, str]] = field(default_factory=list)
    limit: int = NATIVE_DEFAULT_PAGE_SIZE
    marker: str | None = None


@dataclass
class ImageListPage:
    records: list[ImageRecord]
    has_more: bool
    limit: int  # the page size asked for, which the native "next" link repeats


def parse_list_query(
    project_id: str,
    params: Sequence[tuple[str, str]],
    *,
    default_limit: int,
    hide_hidden: bool = False,
) -> ImageListQuery:
    """Turn query parameters into an :class:`ImageListQuery`; any bad value is a 400.

    Unknown parameter names filter on the additional property of that name (as Glance does),
    so ``__os_bit=64`` or ``__support_kvm=true`` need no list of their own. With
    ``hide_hidden`` (the native list, as Glance), images with ``os_hidden`` are left out
    unless the query asks for ``os_hidden=true``.
    """
    query = ImageListQuery(project_id, limit=default_limit)
    single: dict[str, str] = {}
    for name, value in params:
        if name == "tag":
            query.tags.append(_parse_tag(value))
        elif name in single:
            raise BadRequest(f"The query parameter '{name}' is given more than once.")
        else:
            single[name] = value
    for name, value in single.items():
        if name not in _CONTROL:
            _add_filter(query, name, value)
    if hide_hidden and "os_hidden" not in single:
        query.conditions.append(Image.os_hidden == false())
    query.limit = _parse_limit(single.get("limit"), default_limit)
    query.marker = single.get("marker") or None
    query.sort = _parse_sort(single.get("sort"), single.get("sort_key"), single.get("sort_dir"))
    return query


def _parse_tag(value: str) -> tuple[str, str]:
    if not value or len(value) > NATIVE_TAG_MAX_LENGTH:
        raise BadRequest(f"A tag filter is 1 to {NATIVE_TAG_MAX_LENGTH} characters.")
    key, tag_value = parse_native_tag(value)
    return key.strip(), tag_value.strip()


def _add_filter(query: ImageListQuery, name: str, value: str) -> None:
    conditions = query.conditions
    if name in _ALWAYS_TRUE:
        if value.lower() != _ALWAYS_TRUE[name]:
            conditions.append(false())
    elif name in _NOTHING_MATCHES:
        conditions.append(false())
    elif name in _TIME_FILTERS:
        conditions.append(_time_condition(name, value))
    elif name in _BOOL_FILTERS:
        conditions.append(_COLUMN_FILTERS[name] == _parse_bool(name, value))
    elif name in _INT_FILTERS:
        conditions.append(_COLUMN_FILTERS[name] == _parse_int(name, value))
    elif name in ("size_min", "size_max"):
        bound = _parse_int(name, value)
        conditions.append(Image.size >= bound if name == "size_min" else Image.size <= bound)
    elif name in _COLUMN_FILTERS:
        conditions.append(_COLUMN_FILTERS[name] == value)
    elif _PROPERTY_NAME.fullmatch(name):
        conditions.append(Image.properties[name].as_string() == value)
    else:
        raise BadRequest(f"'{name}' is not a query parameter or property name.")


def _parse_bool(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise BadRequest(f"The query parameter '{name}' must be true or false.")
    return lowered == "true"


def _parse_int(name: str, value: str) -> int:
    if not re.fullmatch(r"\d{1,18}", value):
        raise BadRequest(f"The query parameter '{name}' must be a non-negative integer.")
    return int(value)


def _time_condition(name: str, value: str) -> ColumnElement[bool]:
    """``created_at=lt:2018-10-28T10:00:00Z``; a bare time means ``eq``."""
    op, sep, text = value.partition(":")
    if not sep or op not in _TIME_OPS:
        op, text = "eq", value
    for fmt in _TIME_FORMATS:
        try:
            moment = datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        return _TIME_OPS[op](_TIME_FILTERS[name], moment)  # type: ignore[no-any-return]
    raise BadRequest(
        f"The query parameter '{name}' must be 'operator:time' with an operator among "
        f"{', '.join(_TIME_OPS)} and a time like 2018-10-28T10:00:00Z."
    )


def _parse_limit(value: str | None, default: int) -> int:
    if value is None:
        return default
    if not re.fullmatch(r"\d{1,9}", value):
        raise BadRequest("limit must be a non-negative integer.")
    return min(int(value), MAX_PAGE_SIZE)


def _parse_sort(
    sort: str | None, sort_key: str | None, sort_dir: str | None
) -> list[tuple[str, str]]:
    """``sort=name:asc,created_at`` (Glance's newer form) or ``sort_key`` + ``sort_dir``."""
    if sort is not None and (sort_key is not None or sort_dir is not None):
        raise BadRequest("Use either sort or sort_key/sort_dir, not both.")
    pairs: list[tuple[str, str]] = []
    if sort is not None:
        for part in sort.split(","):
            key, _, direction = part.strip().partition(":")
            pairs.append((key, direction or "desc"))
    else:
        keys = (sort_key or "created_at").split(",")
        dirs = (sort_dir or "desc").split(",")
        if len(dirs) not in (1, len(keys)):
            raise BadRequest("sort_dir must give one direction, or one per sort_key.")
        if len(dirs) == 1:
            dirs = dirs * len(keys)
        pairs = [
            (key.strip(), direction.strip()) for key, direction in zip(keys, dirs, strict=True)
        ]
    seen = set()
    for key, direction in pairs:
        if key not in SORT_COLUMNS:
            raise BadRequest(f"sort_key must be one of: {', '.join(SORT_COLUMNS)}.")
        if direction not in ("asc", "desc"):
            raise BadRequest("sort_dir must be asc or desc.")
        if key in seen:
            raise BadRequest(f"The sort key '{key}' is given more than once.")
        seen.add(key)
    if "id" not in seen:  # a total order, so that keyset paging never skips or repeats
        pairs.append(("id", pairs[-1][1]))
    return pairs


def run_list_query(session: Session, query: ImageListQuery) -> ImageListPage:
    """One page of the project's images that match; tags come with them in one more query."""
    ids: list[str] | None = None
    pairs: list[tuple[str, str]] = []
    if query.tags:
        plan = _tag_plan(session, query)
        if plan is None:
            return ImageListPage([], False, query.limit)
        ids, pairs = plan
    if ids is None:
        stmt = select(Image).where(visible_to(query.project_id), *query.conditions)
    else:
        # Start from the tagged ids (primary-key lookups), not from the project's index.
        stmt = select(Image).where(
            Image.id.in_(ids), visible_to(query.project_id, by_index=False), *query.conditions
        )
    for key, value in pairs:
        tag = aliased(ImageTag)
        stmt = stmt.join(tag, and_(tag.image_id == Image.id, tag.key == key, tag.value == value))
    if query.marker is not None:
        stmt = stmt.where(after_marker(session, query))
    order = [SORT_COLUMNS[k].asc() if d == "asc" else SORT_COLUMNS[k].desc() for k, d in query.sort]
    images = list(session.scalars(stmt.order_by(*order).limit(query.limit + 1)))
    has_more = len(images) > query.limit
    images = images[: query.limit]
    tags = tags_of_images(session, [image.id for image in images])
    records = [ImageRecord(image, tags[image.id]) for image in images]
    return ImageListPage(records, has_more, query.limit)


def _tag_plan(
    session: Session, query: ImageListQuery
) -> tuple[list[str] | None, list[tuple[str, str]]] | None:
    """How to apply the tag filters: (ids to start from or None, tags to check by key).

    None when some tag is on no image. The exact per-project counts of the ``tag_counts``
    aggregate choose the plan. When the rarest tag is on few images, their ids are read from
    the ``(project_id, key, value)`` index and the query starts from them (a few primary-key
    lookups, then a small sort). When every tag is common, the images are read in the
    requested order and each is checked against ``image_tags`` by its primary key, which
    fills a page after reading about ``limit / share`` images. The other tags are always
    checked by primary key.
    """
    project_id = query.project_id
    pairs = list(dict.fromkeys(query.tags))
    counts = {
        (key, value): count
        for key, value, count in session.execute(
            select(TagCount.key, TagCount.value, TagCount.image_count).where(
                TagCount.project_id == project_id,
                or_(*(and_(TagCount.key == k, TagCount.value == v) for k, v in pairs)),
            )
        )
    }
    if any(counts.get(pair, 0) <= 0 for pair in pairs):
        return None
    rarest = min(pairs, key=lambda pair: counts[pair])
    if counts[rarest] > DRIVING_TAG_LIMIT:
        return None, pairs
    key, value = rarest
    ids = session.scalars(
        select(ImageTag.image_id).where(
            ImageTag.project_id == project_id, ImageTag.key == key, ImageTag.value == value
        )
    )
    return list(ids), [pair for pair in pairs if pair != rarest]


def after_marker(session: Session, query: ImageListQuery) -> ColumnElement[bool]:
    """Rows strictly after the marker image in the query's order (keyset paging).

    A marker that is not one of the project's images is a 400, as in Glance; a marker with
    nothing after it simply gives an empty page.
    """
    marker = None
    if query.marker is not None and is_well_formed_id(query.marker):
        marker = session.scalar(
            select(Image).where(Image.id == query.marker, visible_to(query.project_id))
        )
    if marker is None:
        raise BadRequest(f"The marker image {query.marker} could not be found.")
    alternatives = []
    equal_so_far: list[ColumnElement[bool]] = []
    for key, direction in query.sort:
        column = SORT_COLUMNS[key]
        value = _MARKER_VALUES[key](marker) if key in _MARKER_VALUES else getattr(marker, key)
        beyond = column > value if direction == "asc" else column < value
        alternatives.append(and_(*equal_so_far, beyond))
        equal_so_far.append(column == value)
    return or_(*alternatives)
