"""Apply Alembic migrations programmatically: the only way the schema is built."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from imstags.storage.database import normalise_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> list[str]:
    """Apply the migrations up to ``revision``; returns the revisions applied, oldest first."""
    applied: list[str] = []
    cfg = alembic_config(url)
    cfg.attributes["on_version_apply"] = lambda step: applied.append(step.up_revision_id or "")
    command.upgrade(cfg, revision)
    return [revision_id for revision_id in applied if revision_id]


def is_current(engine: Engine, url: str) -> bool:
    """True when the database is at the newest migration (for readiness checks)."""
    heads = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current == heads
