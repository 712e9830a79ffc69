"""``imstags db ...``."""

from __future__ import annotations

import click

from imstags.cli.common import Context, open_database, pass_context, redact


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_context
def upgrade(ctx: Context) -> None:
    """Apply all pending migrations."""
    settings = ctx.settings()
    open_database(settings).dispose()
    click.echo(f"database at the newest schema: {redact(settings.resolved_database_url)}")
