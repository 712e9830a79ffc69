"""Bulk import of images with their tags from JSON lines (``imstags images import``).

The format, one image a line (blank lines are skipped)::

    {"project_id": "p1", "id": "<uuid>", "name": "web-01", "tags": {"env": "prod", "team": ""}}

- ``project_id``: 1 to 64 characters; may be left out when the command names a default project.
- ``id``: optional, a UUID in its canonical form (generated when absent); it must not exist yet.
- ``name``: optional, up to 255 characters.
- ``tags``: optional, either an object of key -> value (IMS form) or a list of native tag
  strings (``"k=v"``, ``"k"``), as the native OpenStack API writes them.
- Any other field is refused, so that a misspelt ``tag`` is not silently dropped.

Every tag passes the same rules as the API
(:func:`~imstags.domain.tags.rules.validate_tag`, the 10-tag limit), and the aggregate is kept
by :func:`~imstags.domain.tags.write_path.tag_new_images`, the batched form of the one write
path, so it equals a full recount afterwards.

Lines are read in batches (:func:`read_batches`) and each is written in one transaction
(:func:`write_batch`, run by :class:`imstags.services.bulk_import.ImportService`). A batch is
validated whole before it is written; if any of its lines is bad, every bad line of it is
reported with its line number, nothing of that batch is written, and the import stops there:
the batches before it stay committed, and the report says how many lines they covered.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from sqlalchemy.orm import Session

from imstags.domain.images.records import is_well_formed_id
from imstags.domain.projects import check_project_id
from imstags.domain.tags.native import validate_native_tag
from imstags.domain.tags.rules import validate_tag
from imstags.domain.tags.write_path import check_tag_quota, tag_new_images
from imstags.errors import ImsError, InvalidProjectId, InvalidTag
from imstags.storage.bulk_load import existing_image_ids, tune_for_bulk_load
from imstags.storage.new_image_tags import insert_new_images

DEFAULT_BATCH_SIZE = 20_000
FIELDS = frozenset({"project_id", "id", "name", "tags"})
NAME_MAX_LENGTH = 255


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class ImportLine:
    line: int
    project_id: str
    image_id: str
    name: str
    tags: dict[str, str]


@dataclass
class ImportReport:
    images: int = 0
    tags: int = 0
    lines_committed: int = 0  # every line up to this one is imported (or was blank)
    errors: list[LineError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class BatchRejected(Exception):
    """Raised inside a batch's transaction so that nothing of it is committed."""

    def __init__(self, errors: list[LineError]) -> None:
        super().__init__(f"{len(errors)} bad line(s)")
        self.errors = errors


class LineParser:
    """Turns one JSON line into an :class:`ImportLine` or raises :class:`ImsError`.

    Tag validation is memoised per (key, value): the rules are pure, and a large import repeats
    the same few pairs millions of times.
    """

    def __init__(self, default_project_id: str | None = None) -> None:
        self.default_project_id = default_project_id
        self._pairs: dict[tuple[object, object], tuple[str, str] | ImsError] = {}
        self._native: dict[str, tuple[str, str] | ImsError] = {}

    def parse(self, number: int, raw: bytes | str) -> ImportLine:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ImsError(f"not valid JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise ImsError("a line must be a JSON object")
        unknown = set(doc) - FIELDS
        if unknown:
            raise ImsError(f"unknown field(s): {', '.join(sorted(unknown))}")
        project_id = doc.get("project_id", self.default_project_id)
        if not isinstance(project_id, str):
            raise InvalidProjectId("project_id is missing or not a string")
        check_project_id(project_id)
        image_id = doc.get("id")
        if image_id is None:
            image_id = str(uuid.uuid4())
        elif not is_well_formed_id(image_id):
            raise ImsError(
                "id must be a UUID in lower case with hyphens, such as "
                "1b9e4c3a-2f5d-4e8a-9c7b-0d6e5f4a3b2c"
            )
        name = doc.get("name", "")
        if not isinstance(name, str) or len(name) > NAME_MAX_LENGTH:
            raise ImsError(f"name must be a string of at most {NAME_MAX_LENGTH} characters")
        tags = self._tags(doc.get("tags", {}))
        check_tag_quota(tags)
        return ImportLine(number, project_id, image_id, name, tags)

    def _tags(self, raw: object) -> dict[str, str]:
        pairs: list[tuple[str, str]]
        if isinstance(raw, dict):
            pairs = [self._validated(k, v) for k, v in raw.items()]
        elif isinstance(raw, list):
            pairs = [self._validated_native(t) for t in raw]
        else:
            raise InvalidTag("tags must be an object of key/value pairs or a list of strings")
        tags: dict[str, str] = {}
        for key, value in pairs:
            if key in tags:
                raise InvalidTag(f"The tag key '{key}' occurs more than once.")
            tags[key] = value
        return tags

    def _validated(self, key: object, value: object) -> tuple[str, str]:
        memo_key = (key, value)
        try:
            found = self._pairs.get(memo_key)
        except TypeError:  # unhashable (a list or object as a value): let the rule say why
            found = None
        if found is None:
            try:
                found = validate_tag(key, value)
            except ImsError as exc:
                found = exc
            if isinstance(value, str | None):
                self._pairs[memo_key] = found
        if isinstance(found, ImsError):
            raise found
        return found

    def _validated_native(self, tag: object) -> tuple[str, str]:
        if not isinstance(tag, str):
            return validate_native_tag(tag)
        found = self._native.get(tag)
        if found is None:
            try:
                found = validate_native_tag(tag)
            except ImsError as exc:
                found = exc
            self._native[tag] = found
        if isinstance(found, ImsError):
            raise found
        return found


@dataclass(frozen=True)
class ImportBatch:
    """Lines read up to ``last_line``: the parsed ones, or the reasons some of them are bad."""

    lines: list[ImportLine]
    errors: list[LineError]
    last_line: int


def read_batches(
    lines: Iterable[bytes | str],
    *,
    default_project_id: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[ImportBatch]:
    """Parse JSON lines into batches of at most ``batch_size`` lines (blank lines aside).

    A batch with errors holds every bad line of it; the caller stops there (see module).
    """
    parser = LineParser(default_project_id)
    batch: list[ImportLine] = []
    errors: list[LineError] = []
    seen_in_batch: set[str] = set()
    number = 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            parsed = parser.parse(number, raw)
        except ImsError as exc:
            errors.append(LineError(number, exc.message))
        else:
            if parsed.image_id in seen_in_batch:
                errors.append(LineError(number, f"image {parsed.image_id} occurs twice"))
            seen_in_batch.add(parsed.image_id)
            batch.append(parsed)
        if len(batch) + len(errors) >= batch_size:
            yield ImportBatch(batch, errors, number)
            batch, errors = [], []
            seen_in_batch.clear()
    yield ImportBatch(batch, errors, number)


def write_batch(session: Session, batch: list[ImportLine]) -> tuple[int, int]:
    """One batch in the caller's transaction; re-runnable (``Database.write`` may retry it).

    Returns (images, tags) written. An id that already exists rejects the whole batch.
    """
    tune_for_bulk_load(session)
    existing = existing_image_ids(session, [item.image_id for item in batch])
    if existing:
        raise BatchRejected(
            [
                LineError(item.line, f"an image with ID {item.image_id} already exists")
                for item in batch
                if item.image_id in existing
            ]
        )
    now = datetime.now(UTC).replace(microsecond=0)
    insert_new_images(
        session,
        sorted((item.image_id, item.project_id, item.name) for item in batch),
        now,
    )
    by_project: dict[str, dict[str, Mapping[str, str]]] = {}
    for item in batch:
        if item.tags:
            by_project.setdefault(item.project_id, {})[item.image_id] = item.tags
    tags = sum(
        tag_new_images(session, project_id, tagged, now)
        for project_id, tagged in sorted(by_project.items())
    )
    return len(batch), tags
