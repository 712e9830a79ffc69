from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool

from imstags.storage.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set by imstags.storage.migrate"
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            **_reporting(),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def _reporting() -> dict[str, Any]:
    """Tell imstags.storage.migrate which revisions ran (for its start-up line)."""
    report = config.attributes.get("on_version_apply")
    if report is None:
        return {}
    return {"on_version_apply": lambda *, step, **_: report(step)}


run_migrations()
