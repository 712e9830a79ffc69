"""``GET /v1/cloudimages/tags``: the tags of the images a query selects, as strings.

The images are selected exactly as ``GET /v2/cloudimages`` selects them (filters, ``tag``,
``marker``/``limit``, ``sort_key``/``sort_dir``: :mod:`imstags.domain.images.listing`), with the
reference's default page of 500 images, plus ``page`` (1-based), which the reference's example
request and the SDK's ListTags send. The answer is the distinct tags of that page of images in
the native string form (``k=v``, or ``k`` for the empty value: "in the new specification,
equal signs are used as separators"), in ascending code-point order.

One statement: the page of image ids is a sub-select (``LIMIT``/``OFFSET`` inside it) and the
distinct (key, value) pairs of ``image_tags`` are read for those ids only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from imstags.domain.images import listing
from imstags.domain.tags.native import format_native_tag
from imstags.errors import BadRequest
from imstags.storage.models import Image, ImageTag
from imstags.storage.visibility import visible_to

DEFAULT_IMAGES_PER_PAGE = 500  # querying_tags.rst
PAGE_PATTERN = re.compile(r"[1-9]\d{0,8}")


def tag_strings_of_page(
    session: Session, project_id: str, params: Sequence[tuple[str, str]]
) -> list[str]:
    """The distinct tags, as native strings, of the page of images ``params`` selects."""
    page, rest = _take_page(params)
    query = listing.parse_list_query(project_id, rest, default_limit=DEFAULT_IMAGES_PER_PAGE)
    ids = select(Image.id).where(visible_to(project_id), *query.conditions)
    for key, value in query.tags:
        tag = aliased(ImageTag)
        ids = ids.join(
            tag,
            and_(
                tag.project_id == project_id,
                tag.key == key,
                tag.value == value,
                tag.image_id == Image.id,
            ),
        )
    if query.marker is not None:
        ids = ids.where(listing.after_marker(session, query))
    columns = listing.SORT_COLUMNS
    order = [columns[k].asc() if d == "asc" else columns[k].desc() for k, d in query.sort]
    ids = ids.order_by(*order).limit(query.limit).offset((page - 1) * query.limit)
    rows = session.execute(
        select(ImageTag.key, ImageTag.value)
        .where(ImageTag.image_id.in_(ids.scalar_subquery()))
        .distinct()
    )
    return sorted(format_native_tag(key, value) for key, value in rows)


def _take_page(params: Sequence[tuple[str, str]]) -> tuple[int, list[tuple[str, str]]]:
    pages = [value for name, value in params if name == "page"]
    if len(pages) > 1:
        raise BadRequest("The query parameter 'page' is given more than once.")
    if pages and not PAGE_PATTERN.fullmatch(pages[0]):
        raise BadRequest("page must be a positive integer (1 for the first page).")
    page = int(pages[0]) if pages else 1
    return page, [(name, value) for name, value in params if name != "page"]
