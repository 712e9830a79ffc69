"""Every tagging request's write, as data: :class:`TagChange`.

The tagging operations of all API families reduce to one shape: tags to add or overwrite by
key, tags to remove (by key, or by key and value), and possibly a tag that must be there (the
deletes that answer 404 for a tag the image lacks). As data rather than code, the same change
runs two ways with one meaning:

- in Python, inside a transaction, through the one write path (:func:`TagChange.__call__`,
  :func:`~.write_path.replace_image_tags`): on SQLite, and wherever a transaction is open;
- on PostgreSQL, as one call of the ``imstags_change_tags`` function
  (:mod:`imstags.storage.tag_change_pg`), one round trip instead of three, whose outcome
  :func:`settle` turns into the same answers and errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from imstags.domain.tags.write_path import (
    locked_image_tags,
    replace_image_tags,
    tag_quota_exceeded,
)
from imstags.errors import ImageNotFound, TagNotFound
from imstags.storage.tag_change_pg import TagChangeOutcome, TagChangeStatus
from imstags.storage.tag_rows import TagRows


@dataclass(frozen=True)
class TagChange:
    """One image's tags made ``current + upserts - matching removals``.

    ``removals`` are (key, value) pairs, trimmed as tags are stored; a value of None matches
    the key whatever its value. ``required`` (same form) must be among the current tags, or the
    write is refused with :class:`TagNotFound` and ``missing_message``. The 10-tag limit
    applies to the result, and only when something changes. A write that loses a race is
    retried whole, so the change keeps no state between runs.
    """

    project_id: str
    image_id: str
    upserts: Mapping[str, str] = field(default_factory=dict)
    removals: tuple[tuple[str, str | None], ...] = ()
    required: tuple[str, str | None] | None = None
    missing_message: str = ""

    def desired(self, current: Mapping[str, str]) -> dict[str, str]:
        """The tags the image is to have, given the ones it has (refused if ``required`` is
        not among them)."""
        if self.required is not None:
            key, value = self.required
            if key not in current or (value is not None and current[key] != value):
                raise TagNotFound(self.missing_message)
        desired = {**current, **self.upserts}
        for key, value in self.removals:
            if key in desired and value in (None, desired[key]):
                del desired[key]
        return desired

    def __call__(self, rows: TagRows) -> bool:
        """Carry the change out in the open transaction of ``rows`` (the image is locked
        first); returns whether anything changed."""
        current = locked_image_tags(rows, self.project_id, self.image_id)
        return replace_image_tags(
            rows, self.project_id, self.image_id, current, self.desired(current)
        )


def settle(change: TagChange, outcome: TagChangeOutcome) -> bool:
    """What PostgreSQL's tag-change function answered, as the Python path would have: whether
    anything changed, or the same error with the same message."""
    status = outcome.status
    if status is TagChangeStatus.IMAGE_NOT_FOUND:
        raise ImageNotFound()
    if status is TagChangeStatus.TAG_MISSING:
        raise TagNotFound(change.missing_message)
    if status is TagChangeStatus.QUOTA_EXCEEDED:
        raise tag_quota_exceeded(outcome.tag_count)
    return status is TagChangeStatus.CHANGED
