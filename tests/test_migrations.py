"""The migrations are the only way the schema is built: they must match the models exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from imstags.storage.migrate import alembic_config, is_current
from imstags.storage.models import Base


def test_migrations_have_a_single_head(settings):
    script = ScriptDirectory.from_config(alembic_config(settings.resolved_database_url))
    assert len(script.get_heads()) == 1


def test_migrations_match_models(db):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_migrations_leave_database_current(db, settings):
    assert is_current(db.engine, settings.resolved_database_url)
