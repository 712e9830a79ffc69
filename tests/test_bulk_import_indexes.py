"""The indexes of a first bulk load (``storage/load_indexes.py``) and the rows it writes.

Into an empty PostgreSQL database ``imstags images import`` drops the tag tables' indexes,
loads, and builds them at its end. These tests hold it to the migrations' schema: after a
first load, after a load killed half way and repaired by the next command, and after an import
into a database that already has images (which must not touch them). On SQLite nothing is
deferred, and the same tests check that the schema is still the migrations'.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from imstags.services.bulk_import import parsed_ahead
from imstags.settings import Settings
from imstags.storage.database import Database, normalise_url
from imstags.storage.load_indexes import DEFERRED, LOAD_LOCK, STRUCTURES
from imstags.storage.migrate import upgrade
from tests.support.aggregate import assert_aggregate_exact
from tests.support.databases import empty_test_database
from tests.support.server import server_environment

REPOSITORY = Path(__file__).resolve().parent.parent
DEFERRED_NOTE = "indexes built after the load"


@contextmanager
def blank_settings(tmp_path: Path, name: str) -> Iterator[Settings]:
    """Settings of a new database of the suite's kind, migrated to the newest schema."""
    with empty_test_database(tmp_path / name) as url:
        (tmp_path / name).mkdir(exist_ok=True)
        upgrade(url)
        yield Settings(
            database_url=url,
            data_dir=tmp_path / name,
            secret_key=Fernet.generate_key().decode(),
        )


@pytest.fixture
def blank(tmp_path: Path) -> Iterator[Settings]:
    with blank_settings(tmp_path, "blank") as settings:
        yield settings


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[Settings]:
    """A freshly migrated database whose schema the others must equal."""
    with blank_settings(tmp_path, "reference") as settings:
        yield settings


def is_postgres(settings: Settings) -> bool:
    return settings.resolved_database_url.startswith("postgresql")


def imstags(settings: Settings, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "imstags", *args],
        env=server_environment(settings),
        cwd=REPOSITORY,
        capture_output=True,
        timeout=300,
    )


def workload(
    tmp_path: Path, images: int, project_id: str, name: str = "w.jsonl", seed: int = 3
) -> Path:
    path = tmp_path / name
    with path.open("wb") as out:
        subprocess.run(
            [sys.executable, "-m", "benchmarks.generate", "--images", str(images),
             "--seed", str(seed), "--project-id", project_id],
            cwd=REPOSITORY, stdout=out, check=True, timeout=120,
        )  # fmt: skip
    return path


def schema(settings: Settings) -> set[tuple[str, ...]]:
    """The indexes and constraints of images and image_tags, as the database shows them."""
    engine = create_engine(normalise_url(settings.resolved_database_url))
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                rows = conn.execute(
                    text(
                        "SELECT type, name, sql FROM sqlite_master"
                        " WHERE tbl_name IN ('images', 'image_tags')"
                    )
                )
            else:
                rows = conn.execute(
                    text(
                        "SELECT 'index', indexname, indexdef FROM pg_indexes"
                        " WHERE schemaname = current_schema()"
                        " AND tablename IN ('images', 'image_tags')"
                        " UNION ALL SELECT 'constraint', conname,"
                        " pg_get_constraintdef(oid) || ' valid=' || convalidated"
                        " FROM pg_constraint"
                        " WHERE conrelid IN ('images'::regclass, 'image_tags'::regclass)"
                    )
                )
            return {tuple(row) for row in rows}
    finally:
        engine.dispose()


def index_oids(settings: Settings) -> dict[str, int]:
    engine = create_engine(normalise_url(settings.resolved_database_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT indexname, (quote_ident(indexname))::regclass::oid FROM pg_indexes"
                    " WHERE tablename IN ('images', 'image_tags')"
                )
            )
            return {name: int(oid) for name, oid in rows}
    finally:
        engine.dispose()


def missing(settings: Settings) -> set[str]:
    names = {row[1] for row in schema(settings)}
    return {item.name for item in STRUCTURES} - names


def test_first_load_ends_with_the_migrations_indexes(blank, reference, tmp_path):
    project = uuid.uuid4().hex
    done = imstags(blank, "images", "import", str(workload(tmp_path, 300, project)))
    assert done.returncode == 0, done.stderr.decode()
    # PostgreSQL took the deferred path; SQLite never does.
    assert (DEFERRED_NOTE in done.stderr.decode()) == is_postgres(blank)
    assert schema(blank) == schema(reference)
    db = Database(blank.resolved_database_url)
    try:
        assert_aggregate_exact(db, project)
    finally:
        db.dispose()


def test_import_into_a_database_with_images_keeps_its_indexes(blank, reference, tmp_path):
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    done = imstags(blank, "images", "import", str(workload(tmp_path, 50, first, "1.jsonl")))
    assert done.returncode == 0, done.stderr.decode()
    before = index_oids(blank) if is_postgres(blank) else {}
    done = imstags(
        blank, "images", "import", str(workload(tmp_path, 50, second, "2.jsonl", seed=4))
    )
    assert done.returncode == 0, done.stderr.decode()
    assert DEFERRED_NOTE not in done.stderr.decode()
    assert schema(blank) == schema(reference)
    if is_postgres(blank):  # the same indexes, not dropped and built again
        assert index_oids(blank) == before


def test_first_load_with_a_bad_line_still_builds_the_indexes(blank, reference, tmp_path):
    project = uuid.uuid4().hex
    path = workload(tmp_path, 30, project)
    with path.open("a") as out:
        out.write("{not json\n")
    done = imstags(blank, "images", "import", str(path), "--batch-size", "10")
    assert done.returncode == 1
    assert "lines 1-30 committed" in done.stderr.decode()
    assert schema(blank) == schema(reference)


def postgres_only(settings: Settings) -> None:
    if not is_postgres(settings):
        pytest.skip("indexes are deferred on PostgreSQL only")


def test_a_killed_first_load_gets_its_indexes_from_the_next_command(blank, reference, tmp_path):
    """SIGKILL in the middle of a first load: the committed batches stay, the indexes are
    missing, and the next command (here ``db upgrade``) builds them."""
    postgres_only(blank)
    project = uuid.uuid4().hex
    path = workload(tmp_path, 20_000, project)
    load = subprocess.Popen(
        [sys.executable, "-m", "imstags", "images", "import", str(path), "--quiet",
         "--batch-size", "50"],
        env=server_environment(blank), cwd=REPOSITORY, start_new_session=True,
    )  # fmt: skip
    engine = create_engine(normalise_url(blank.resolved_database_url))
    try:
        deadline = time.monotonic() + 120
        while load.poll() is None and time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(text("SELECT count(*) FROM images")).scalar():
                    break
            time.sleep(0.02)
        os.killpg(load.pid, signal.SIGKILL)
        load.wait()
        with engine.connect() as conn:
            loaded = conn.execute(text("SELECT count(*) FROM images")).scalar()
    finally:
        engine.dispose()
    assert loaded and loaded < 20_000, "the kill must land in the middle of the load"
    assert missing(blank) == {item.name for item in DEFERRED}
    done = imstags(blank, "db", "upgrade")
    assert done.returncode == 0, done.stderr.decode()
    assert "rebuilt the indexes an interrupted import left missing" in done.stdout.decode()
    assert schema(blank) == schema(reference)


def test_indexes_are_not_rebuilt_under_a_live_load(blank, reference):
    """While a load holds its lock, a command run beside it leaves its indexes alone; once
    the lock is gone, the next command builds them."""
    postgres_only(blank)
    engine = create_engine(normalise_url(blank.resolved_database_url))
    try:
        with engine.connect() as holder:
            holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOAD_LOCK})
            holder.execute(text("DROP INDEX ix_image_tags_by_tag"))
            holder.commit()
            done = imstags(blank, "db", "upgrade")
            assert done.returncode == 0, done.stderr.decode()
            assert missing(blank) == {"ix_image_tags_by_tag"}
            holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOAD_LOCK})
            holder.commit()
    finally:
        engine.dispose()
    done = imstags(blank, "db", "check", "--repair")
    assert done.returncode == 0, done.stderr.decode()
    assert schema(blank) == schema(reference)


def test_imported_rows_hold_their_text_and_the_model_defaults(blank, tmp_path):
    """COPY writes the images' rows on PostgreSQL: every column must be what an ORM insert
    gives, and text that COPY's format escapes (tab, newline, backslash) must arrive as is."""
    project = uuid.uuid4().hex
    odd = "tab\there\nnewline back\\slash \\N"
    lines = [
        {"project_id": project, "name": odd, "tags": {"k\\1": "v\\N", "plain": ""}},
        {"project_id": project, "name": "", "tags": {}},
    ]
    path = tmp_path / "odd.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    done = imstags(blank, "images", "import", str(path), "--quiet")
    assert done.returncode == 0, done.stderr.decode()
    engine = create_engine(normalise_url(blank.resolved_database_url))
    try:
        with engine.connect() as conn:
            images = conn.execute(
                text(
                    "SELECT name, status, visibility, protected, os_hidden, container_format,"
                    " disk_format, min_disk, min_ram, size, checksum, image_type, os_type,"
                    " virtual_env_type, properties, created_at = updated_at FROM images"
                    " ORDER BY name DESC"
                )
            ).all()
            tags = conn.execute(
                text("SELECT key, value, project_id FROM image_tags ORDER BY key")
            ).all()
    finally:
        engine.dispose()
    defaults = ("queued", "private", False, False, "bare", "zvhd2", 0, 0, None, None)
    defaults += ("private", None, "FusionCompute")
    properties = [row[14] if isinstance(row[14], dict) else json.loads(row[14]) for row in images]
    assert [tuple(row[:14]) for row in images] == [(odd, *defaults), ("", *defaults)]
    assert properties == [{}, {}]
    assert all(row[15] for row in images)
    assert [tuple(row) for row in tags] == [("k\\1", "v\\N", project), ("plain", "", project)]


def test_a_load_leaves_its_tables_vacuumed_for_index_only_scans(blank, tmp_path):
    """The query by tag reads its page from the by-tag index alone only where the visibility
    map says the heap pages are all visible; a load ends with them so, autovacuum or not."""
    postgres_only(blank)
    done = imstags(blank, "images", "import", str(workload(tmp_path, 2_000, uuid.uuid4().hex)))
    assert done.returncode == 0, done.stderr.decode()
    engine = create_engine(normalise_url(blank.resolved_database_url))
    try:
        with engine.connect() as conn:
            pages = conn.execute(
                text(
                    "SELECT relname, relpages, relallvisible FROM pg_class"
                    " WHERE relname IN ('images', 'image_tags') ORDER BY relname"
                )
            ).all()
            analyzed = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL"
                    " AND relname IN ('images', 'image_tags', 'tag_counts')"
                )
            ).scalar()
    finally:
        engine.dispose()
    assert [(name, visible == total > 0) for name, total, visible in pages] == [
        ("image_tags", True),
        ("images", True),
    ]
    assert analyzed == 3


def test_planner_counts_image_tags_by_ten_rows_an_image(blank, tmp_path):
    """ANALYZE samples whole pages, where an image's tags sit together, and so guessed a
    fiftieth of the real number of images at 10M; migration 0007 tells the planner instead.
    At this size the sample would have guessed right too (the option is what fails against
    the old schema); the estimate shows the option is read as meant: a thousand rows for the
    tags of a hundred images."""
    postgres_only(blank)
    project = uuid.uuid4().hex
    done = imstags(blank, "images", "import", str(workload(tmp_path, 5_000, project)))
    assert done.returncode == 0, done.stderr.decode()
    engine = create_engine(normalise_url(blank.resolved_database_url))
    try:
        with engine.connect() as conn:
            option = conn.execute(
                text(
                    "SELECT attoptions FROM pg_attribute"
                    " WHERE attrelid = 'image_tags'::regclass AND attname = 'image_id'"
                )
            ).scalar()
            ids = list(conn.execute(text("SELECT id FROM images LIMIT 100")).scalars())
            plan = conn.execute(
                text("EXPLAIN (FORMAT JSON) SELECT * FROM image_tags WHERE image_id = ANY(:ids)"),
                {"ids": ids},
            ).scalar()
    finally:
        engine.dispose()
    assert "n_distinct=-0.1" in option
    assert plan[0]["Plan"]["Plan Rows"] == 1000


def test_parsed_ahead_hands_over_items_and_the_producers_error():
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("bad input")

    got = []
    with pytest.raises(ValueError, match="bad input"), parsed_ahead(items(), 1) as ahead:
        got.extend(ahead)
    assert got == [1, 2]


def test_parsed_ahead_stops_its_producer_when_the_consumer_stops():
    produced = []

    def items() -> Iterator[int]:
        for number in range(1_000):
            produced.append(number)
            yield number

    with parsed_ahead(items(), 1) as ahead:
        assert next(ahead) == 0
    assert len(produced) < 10
