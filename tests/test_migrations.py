"""The migrations are the only way the schema is built: they must match the models exactly."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from imstags.storage.database import normalise_url
from imstags.storage.migrate import alembic_config, is_current, upgrade
from imstags.storage.models import Base
from tests.support.databases import empty_test_database


def test_migrations_have_a_single_head(settings):
    script = ScriptDirectory.from_config(alembic_config(settings.resolved_database_url))
    assert len(script.get_heads()) == 1


def test_migrations_match_models(db):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_migrations_leave_database_current(db, settings):
    assert is_current(db.engine, settings.resolved_database_url)


@pytest.fixture
def blank_database_url(tmp_path):
    """An empty database of the kind the suite runs on, for walking the migrations."""
    with empty_test_database(tmp_path) as url:
        yield url


def test_0002_copies_each_images_created_at_to_its_existing_tags(blank_database_url):
    """A database of the first schema, with tagged images in it, upgrades in place: every tag
    row gets its image's created_at (the by-tag index orders by it); and it downgrades back."""
    url = blank_database_url
    upgrade(url, "0001")
    engine = create_engine(normalise_url(url))
    images = [("img-old", "2026-01-01 10:00:00"), ("img-new", "2026-06-01 12:30:00")]
    with engine.begin() as conn:
        for image_id, created in images:
            conn.execute(
                text(
                    "INSERT INTO images (id, project_id, name, status, visibility, protected,"
                    " container_format, disk_format, min_disk, min_ram, image_type,"
                    " virtual_env_type, properties, created_at, updated_at) VALUES (:id, 'p',"
                    " '', 'queued', 'private', false, 'bare', 'zvhd2', 0, 0, 'private',"
                    " 'FusionCompute', '{}', :created, :created)"
                ),
                {"id": image_id, "created": created},
            )
            for key in ("a", "b"):
                conn.execute(
                    text(
                        "INSERT INTO image_tags (image_id, key, value, project_id)"
                        " VALUES (:id, :key, 'v', 'p')"
                    ),
                    {"id": image_id, "key": key},
                )
    upgrade(url, "0002")
    query = (
        "SELECT count(*) FROM image_tags JOIN images ON images.id = image_tags.image_id"
        " WHERE image_tags.created_at = images.created_at"
    )
    with engine.connect() as conn:
        assert conn.execute(text(query)).scalar() == 4
        assert conn.execute(text("SELECT count(*) FROM image_tags")).scalar() == 4
    command.downgrade(alembic_config(url), "0001")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM image_tags")).scalar() == 4
    engine.dispose()
