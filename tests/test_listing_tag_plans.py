"""Tag-filtered image listings: every plan pages exactly like a plain filter, on both databases.

The listing picks its plan from the tag aggregate's counts and the sort (the by-tag index read
in creation order, the rare tag's ids, or the images walked in order). Here a few hundred
images with rare and common tags, many of them created in the same second, are listed page by
page with markers, and each page is compared with the same filter and sort done in Python.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.engine import Engine

from imstags.domain.images import listing, records

IMAGES = 240
# Tag -> which images carry it (by creation index): common, half, a third, rare, key only.
TAGGED = {
    "c=1": lambda i: i % 5 != 0,
    "h=x": lambda i: i % 2 == 0,
    "t=y": lambda i: i % 3 == 0,
    "r=z": lambda i: i % 17 == 4,
    "flag": lambda i: i % 4 != 1,
}
FILTERS = [
    ["c=1", "h=x"],  # two common tags
    ["r=z", "c=1"],  # a rare and a common one
    ["c=1", "t=y", "flag"],  # three, one without a value
    ["h=x"],  # one tag
    ["h=x", "t=y", "r=z"],
]
SORTS = [
    [],  # the default: created_at desc, id desc
    [("sort", "created_at:asc")],
    [("sort_key", "created_at"), ("sort_dir", "desc")],
    [("sort", "created_at:desc,id:asc")],  # mixed directions: not the index's order
    [("sort", "name:asc")],
    [("sort", "id:desc")],
]


@pytest.fixture(scope="module")
def catalog(db, monkeypatch_module):
    """(project, {image id: (name, created_at, tags)}): ties of created_at three by three, in an
    order that is neither creation nor id order; names repeat."""
    project = f"listing{datetime.now(UTC).timestamp():.0f}"
    base = datetime(2026, 1, 1, tzinfo=UTC)
    moments = iter([base + timedelta(seconds=(i * 37) % 80) for i in range(IMAGES)])
    monkeypatch_module.setattr(records, "utcnow", lambda: next(moments))
    images: dict[str, tuple[str, datetime, set[str]]] = {}

    def create(session) -> None:
        for i in range(IMAGES):
            tags = [tag for tag, carries in TAGGED.items() if carries(i)]
            name = f"n{i % 9}"
            record = records.create_image_tx(session, project, {"name": name}, tags, {})
            images[record.image.id] = (name, record.image.created_at, set(tags))

    db.write(create)
    return project, images


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def reference(images, tags: list[str], sort: list[tuple[str, str]]) -> list[str]:
    """The ids that carry every tag, in the order ``sort`` (as parsed) asks for."""
    matching = [image_id for image_id, (_, _, own) in images.items() if set(tags) <= own]
    for key, direction in reversed(sort):  # stable sorts, least significant key first

        def value(image_id, key=key):
            name, created_at, _ = images[image_id]
            return {"name": name, "created_at": created_at, "id": image_id}[key]

        matching.sort(key=value, reverse=direction == "desc")
    return matching


def pages(db, project, params, limit: int) -> list[list[str]]:
    found: list[list[str]] = []
    marker: list[tuple[str, str]] = []
    for _ in range(IMAGES):
        query = listing.parse_list_query(
            project, [*params, ("limit", str(limit)), *marker], default_limit=25
        )
        with db.read() as session:
            page = listing.run_list_query(session, query)
        found.append([r.image.id for r in page.records])
        if not page.has_more:
            return found
        marker = [("marker", found[-1][-1])]
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("driving_limit", [0, 50, 10_000])
@pytest.mark.parametrize("sort", SORTS, ids=lambda s: ",".join(v for _, v in s) or "default")
@pytest.mark.parametrize("tags", FILTERS, ids=lambda t: "&".join(t))
def test_tag_filtered_pages_equal_a_plain_filter(
    db, catalog, monkeypatch, tags, sort, driving_limit
):
    """Every page (limit 7, each after the previous page's last image) is the reference's next
    seven ids, and ``has_more`` is false only on the last. In orders other than creation
    order, ``driving_limit`` picks the plan: 0 walks the images in order, 10,000 starts from
    the rarest tag's ids, 50 does either depending on how many images carry every tag."""
    project, images = catalog
    monkeypatch.setattr(listing, "DRIVING_TAG_LIMIT", driving_limit)
    params = [("tag", tag) for tag in tags] + sort
    parsed = listing.parse_list_query(project, params, default_limit=25).sort
    expected = reference(images, tags, parsed)
    assert expected  # every filter here matches some images

    got = pages(db, project, params, 7)

    assert got == [expected[i : i + 7] for i in range(0, len(expected), 7)] or (
        got == [[]] and not expected
    )


@pytest.mark.parametrize("sort", SORTS[:2] + SORTS[3:5], ids=["desc", "asc", "mixed", "name"])
def test_marker_outside_the_filter_pages_from_its_position(db, catalog, sort):
    """Glance's marker is any image of the project: the page starts right after its place in
    the order, whether or not it carries the tags."""
    project, images = catalog
    tags = ["c=1", "h=x"]
    params = [("tag", tag) for tag in tags] + sort
    parsed = listing.parse_list_query(project, params, default_limit=25).sort
    everything = reference(images, [], parsed)
    expected = reference(images, tags, parsed)
    markers = everything[::23]
    assert set(markers) - set(expected)  # some markers do not carry the tags
    for marker in markers:
        after = everything[everything.index(marker) + 1 :]
        query = listing.parse_list_query(
            project, [*params, ("limit", "1000"), ("marker", marker)], default_limit=25
        )
        with db.read() as session:
            page = listing.run_list_query(session, query)
        assert [r.image.id for r in page.records] == [i for i in expected if i in set(after)]


def test_a_tag_on_no_image_lists_nothing(db, catalog):
    project, _ = catalog
    query = listing.parse_list_query(project, [("tag", "c=1"), ("tag", "r=none")], default_limit=5)
    with db.read() as session:
        page = listing.run_list_query(session, query)
    assert page.records == [] and not page.has_more


@pytest.mark.parametrize("direction", ["desc", "asc"])
def test_creation_order_reads_the_rarest_tags_index_without_sorting(db, catalog, direction):
    """In creation order the page is one range of the by-tag index, read in order from the
    marker on: no sort step, whatever the share of the tags (SQLite's plan; PostgreSQL picks
    by its statistics, which a test's few hundred rows do not make representative)."""
    if not db.is_sqlite:
        pytest.skip("the plan of a few hundred rows on PostgreSQL says nothing about 1M")
    project, images = catalog
    marker = sorted(images)[len(images) // 2]
    statements: list[tuple[str, object]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    params = [("tag", "c=1"), ("tag", "h=x"), ("sort", f"created_at:{direction}")]
    query = listing.parse_list_query(project, [*params, ("marker", marker)], default_limit=25)
    event.listen(Engine, "before_cursor_execute", grab)
    try:
        with db.read() as session:
            listing.run_list_query(session, query)
    finally:
        event.remove(Engine, "before_cursor_execute", grab)
    statement, parameters = next(s for s in statements if "ORDER BY" in s[0])
    with db.read() as session:
        plan = [
            row[-1]
            for row in session.connection().exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement, parameters
            )
        ]
    assert any("ix_image_tags_by_tag" in step and "created_at" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


def test_bulk_imported_and_api_images_of_one_second_page_in_one_order(db, monkeypatch):
    """Images imported in bulk and images created through the API in the same second: their
    tag rows carry the image's ``created_at`` exactly (on SQLite, the same text), so pages
    read from the by-tag index order and bound them as the images' own columns do."""
    from imstags.domain.tags.write_path import tag_new_images
    from imstags.storage.models import Image, ImageTag

    project = f"bulk{uuid.uuid4().hex}"
    moment = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    monkeypatch.setattr(records, "utcnow", lambda: moment)
    imported = {str(uuid.uuid4()): {"a": "1", "b": "2"} for _ in range(12)}

    def create(session) -> None:
        session.execute(
            insert(Image),
            [
                {"id": image_id, "project_id": project, "name": "bulk", "properties": {},
                 "created_at": moment, "updated_at": moment}
                for image_id in imported
            ],
        )  # fmt: skip
        tag_new_images(session, project, imported, moment)
        for _ in range(12):
            records.create_image_tx(session, project, {"name": "api"}, ["a=1", "b=2"], {})

    db.write(create)
    with db.read() as session:
        differing = session.scalar(
            select(func.count())
            .select_from(ImageTag)
            .join(Image, Image.id == ImageTag.image_id)
            .where(ImageTag.project_id == project, ImageTag.created_at != Image.created_at)
        )
        ids = list(session.scalars(select(Image.id).where(Image.project_id == project)))
    assert differing == 0
    for sort in ([], [("sort", "created_at:asc")]):
        expected = sorted(ids, reverse=not sort)  # one second: the id decides
        got = pages(db, project, [("tag", "a=1"), ("tag", "b=2"), *sort], 5)
        assert got == [expected[i : i + 5] for i in range(0, len(expected), 5)]


def test_migration_0005_rewrites_tag_rows_in_the_images_text(tmp_path):
    """A SQLite database whose bulk-imported tag rows hold the driver's text for the image's
    instant gets the image's own text; rows that already agree are left as they are."""
    from sqlalchemy import create_engine, text

    from imstags.storage.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0002")
    engine = create_engine(url)
    stamp = "2026-11-30 22:08:22.000000"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO images (id, project_id, name, status, visibility, protected,"
                " container_format, disk_format, min_disk, min_ram, image_type,"
                " virtual_env_type, properties, created_at, updated_at) VALUES ('i', 'p', '',"
                " 'queued', 'private', 0, 'bare', 'zvhd2', 0, 0, 'private', 'FusionCompute',"
                " '{}', :stamp, :stamp)"
            ),
            {"stamp": stamp},
        )
        for key, created in (("a", "2026-11-30 22:08:22+00:00"), ("b", stamp)):
            conn.execute(
                text(
                    "INSERT INTO image_tags (image_id, key, value, project_id, created_at)"
                    " VALUES ('i', :key, 'v', 'p', :created)"
                ),
                {"key": key, "created": created},
            )
    upgrade(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT key, created_at FROM image_tags ORDER BY key")).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [("a", stamp), ("b", stamp)]
