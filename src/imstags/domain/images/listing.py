"""Image listings shared by the native ``GET /v2/images`` and IMS's ``GET /v2/cloudimages``.

A query is parsed once from the request's (name, value) pairs into SQL conditions, then run
as one statement: filters, tag joins, keyset paging after the marker, ``LIMIT n + 1`` to know
whether another page follows. Nothing is filtered in Python, so a page costs the same whatever
the size of the catalog.

Tags: ``tag=k=v`` is the IMS tag key ``k`` with value ``v``, ``tag=k`` the key ``k`` with the
empty value (the native mapping of :mod:`imstags.domain.tags.native`); several ``tag``
parameters must all match. The aggregate's exact counts pick the plan (see
:func:`_tag_plan`): in creation order (the default) the page is read from the rarest tag's
``(project_id, key, value, created_at, image_id)`` index range, already in page order; in
other orders few matches are found from that range and sorted, many are found by reading the
images in order. Tags other than the one a plan starts from are checked by primary key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, or_, select, tuple_
from sqlalchemy.orm import QueryableAttribute, Session, aliased

from imstags.domain.images.attributes import COLUMNS
from imstags.domain.images.records import ImageRecord, is_well_formed_id
from imstags.domain.projects import visible_to
from imstags.domain.tags.native import NATIVE_TAG_MAX_LENGTH, parse_native_tag
from imstags.domain.tags.rules import to_nfc
from imstags.domain.tags.write_path import tags_of_images
from imstags.errors import BadRequest
from imstags.storage.models import Image, ImageTag, TagCount

MAX_PAGE_SIZE = 1000
NATIVE_DEFAULT_PAGE_SIZE = 25  # Glance's default
IMS_DEFAULT_PAGE_SIZE = 500  # querying_images.rst
# A tag on at most this many of a project's images starts the query from its index entries.
DRIVING_TAG_LIMIT = 2000
# Sorted other than by creation time, several tags whose rarest is on at most this many images
# are intersected first (its index range, the others by primary key): at W's 1M images, two
# tags of 10,000 images share about 100, and walking the images in order to find 25 of them
# reads about 250,000.
INTERSECT_SCAN_LIMIT = 20_000
SORT_COLUMNS: dict[str, Any] = {
    "name": Image.name,
    "container_format": Image.container_format,
    "disk_format": Image.disk_format,
    "status": Image.status,
    "id": Image.id,
    "size": func.coalesce(Image.size, -1),  # images without data (null) sort as -1
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
    "size": Image.size,
    "checksum": Image.checksum,
    "os_hash_value": Image.os_hash_value,
}
_INT_FILTERS = {"min_ram", "min_disk", "size"}
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
    key, tag_value = parse_native_tag(to_nfc(value))
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
        # The operator functions are typed as returning Any; on columns they build a condition.
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
    if query.tags:
        stmt = _tag_plan(session, query)
        if stmt is None:
            return ImageListPage([], False, query.limit)
    else:
        stmt = select(Image).where(visible_to(query.project_id), *query.conditions)
        stmt = _in_sort_order(session, query, stmt)
    images = list(session.scalars(stmt))
    has_more = len(images) > query.limit
    images = images[: query.limit]
    tags = tags_of_images(session, [image.id for image in images])
    records = [ImageRecord(image, tags[image.id]) for image in images]
    return ImageListPage(records, has_more, query.limit)


def _in_sort_order(session: Session, query: ImageListQuery, stmt: Select[Any]) -> Select[Any]:
    """``stmt`` after the marker, in the query's order, cut at ``limit + 1``."""
    if query.marker is not None:
        stmt = stmt.where(after_marker(session, query))
    order = [SORT_COLUMNS[k].asc() if d == "asc" else SORT_COLUMNS[k].desc() for k, d in query.sort]
    return stmt.order_by(*order).limit(query.limit + 1)


def _tag_plan(session: Session, query: ImageListQuery) -> Select[Any] | None:
    """The page's statement for a query with tag filters; None when some tag is on no image.

    The exact per-project counts of the ``tag_counts`` aggregate choose the plan; the tags
    other than the one the plan starts from are always checked by ``image_tags``' primary key
    ``(image_id, key)``.

    - Sorted by creation time (the default): the rarest tag's range of the
      ``(project_id, key, value, created_at, image_id)`` index is read in the requested order
      from the marker on, and stops once the page is full (:func:`_by_tag_index`). The work
      is at most that tag's images, and ``limit / share`` of them when the other tags are on
      a share of them: about 2,500 entries for two tags of 10,000 images sharing 100.
    - Other sorts, few images carry every tag (:func:`_few_matches`): their ids are read from
      the rarest tag's index range and the query starts from them (a few primary-key lookups,
      then a small sort).
    - Other sorts, many images carry every tag: the images are read in the requested order and
      each is checked by primary key, which fills a page after reading ``limit / share`` images.
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
    others = [pair for pair in pairs if pair != rarest]
    if _in_creation_order(query):
        return _by_tag_index(session, query, rarest, others)
    ids = _few_matches(session, project_id, rarest, others, counts[rarest])
    if ids is None:
        stmt = select(Image).where(visible_to(project_id), *query.conditions)
        return _in_sort_order(session, query, _carrying_all(stmt, Image.id, pairs))
    # Start from the matching ids (primary-key lookups), not from the project's index.
    stmt = select(Image).where(
        Image.id.in_(ids), visible_to(project_id, by_index=False), *query.conditions
    )
    return _in_sort_order(session, query, stmt)


def _few_matches(
    session: Session,
    project_id: str,
    rarest: tuple[str, str],
    others: list[tuple[str, str]],
    count: int,
) -> list[str] | None:
    """The ids of the images that carry every tag, if there are at most ``DRIVING_TAG_LIMIT``.

    They are read from the rarest tag's by-tag index range, the other tags checked by primary
    key, and the read stops at ``DRIVING_TAG_LIMIT + 1`` matches. None when there are more,
    or when finding out could read more than ``INTERSECT_SCAN_LIMIT`` index entries.
    """
    if count > DRIVING_TAG_LIMIT and (not others or count > INTERSECT_SCAN_LIMIT):
        return None
    tag = aliased(ImageTag)
    key, value = rarest
    stmt = select(tag.image_id).where(
        tag.project_id == project_id, tag.key == key, tag.value == value
    )
    stmt = _carrying_all(stmt, tag.image_id, others).limit(DRIVING_TAG_LIMIT + 1)
    ids = list(session.scalars(stmt))
    return ids if len(ids) <= DRIVING_TAG_LIMIT else None


def _in_creation_order(query: ImageListQuery) -> bool:
    """Whether the order is the by-tag index's: ``created_at`` then ``id``, one direction."""
    return query.sort in (
        [("created_at", "desc"), ("id", "desc")],
        [("created_at", "asc"), ("id", "asc")],
    )


def _by_tag_index(
    session: Session,
    query: ImageListQuery,
    driving: tuple[str, str],
    others: list[tuple[str, str]],
) -> Select[Any]:
    """The page read from ``driving``'s by-tag index range in ``(created_at, id)`` order.

    The index carries each image's ``created_at`` (copied from the image, which never changes
    it), so the range is already in page order: no sort, and the marker is a bound on the
    range. The image row is then read by primary key for the other filters. Its project
    condition stays in the form the planner can estimate: hidden behind ``coalesce``
    (``visible_to(by_index=False)``), PostgreSQL took it for a few hundred rows and started
    from a scan of all images (6.6 s at 400,000 images, against 0.3 s from the index range).
    """
    project_id = query.project_id
    tag = aliased(ImageTag)
    key, value = driving
    stmt = (
        select(Image)
        .select_from(tag)
        .join(Image, Image.id == tag.image_id)
        .where(
            tag.project_id == project_id,
            tag.key == key,
            tag.value == value,
            visible_to(project_id),
            *query.conditions,
        )
    )
    stmt = _carrying_all(stmt, tag.image_id, others)
    position = tuple_(tag.created_at, tag.image_id)
    descending = query.sort[0][1] == "desc"
    if query.marker is not None:
        marker = marker_image(session, query)
        bound = (marker.created_at, marker.id)
        stmt = stmt.where(position < bound if descending else position > bound)
    if descending:
        order = (tag.created_at.desc(), tag.image_id.desc())
    else:
        order = (tag.created_at.asc(), tag.image_id.asc())
    return stmt.order_by(*order).limit(query.limit + 1)


def _carrying_all(
    stmt: Select[Any], image_id: QueryableAttribute[str], pairs: list[tuple[str, str]]
) -> Select[Any]:
    """``stmt`` kept to the images that carry every (key, value) of ``pairs``, each checked by
    ``image_tags``' primary key. ``EXISTS`` rather than a join, so that the planner keeps the
    statement's own starting point instead of starting from one of these tags."""
    for key, value in pairs:
        tag = aliased(ImageTag)
        stmt = stmt.where(
            exists().where(tag.image_id == image_id, tag.key == key, tag.value == value)
        )
    return stmt


def after_marker(session: Session, query: ImageListQuery) -> ColumnElement[bool]:
    """Rows strictly after the marker image in the query's order (keyset paging).

    A marker that is not one of the project's images is a 400, as in Glance; a marker with
    nothing after it simply gives an empty page.
    """
    marker = marker_image(session, query)
    alternatives = []
    equal_so_far: list[ColumnElement[bool]] = []
    for key, direction in query.sort:
        column = SORT_COLUMNS[key]
        value = _MARKER_VALUES[key](marker) if key in _MARKER_VALUES else getattr(marker, key)
        beyond = column > value if direction == "asc" else column < value
        alternatives.append(and_(*equal_so_far, beyond))
        equal_so_far.append(column == value)
    return or_(*alternatives)


def marker_image(session: Session, query: ImageListQuery) -> Image:
    """The query's marker image; one that is not one of the project's images is a 400."""
    marker = None
    if query.marker is not None and is_well_formed_id(query.marker):
        marker = session.scalar(
            select(Image).where(Image.id == query.marker, visible_to(query.project_id))
        )
    if marker is None:
        raise BadRequest(f"The marker image {query.marker} could not be found.")
    return marker
