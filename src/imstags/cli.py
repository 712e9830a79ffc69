"""The ``imstags`` command: serve, migrate, and manage credentials.

Every command takes ``--database`` (else ``IMSTAGS_DATABASE_URL``, else an SQLite file in the
data directory) and builds one :class:`~imstags.settings.Settings` from flags, environment and
defaults.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import click

from imstags.settings import Settings


class Context:
    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides

    def settings(self, **more: Any) -> Settings:
        return Settings.load(**{**self.overrides, **more})


pass_context = click.make_pass_decorator(Context)


@click.group()
@click.option("--database", "database_url", help="SQLAlchemy database URL.")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help="Where the default SQLite file and key live.",
)
@click.version_option(package_name="imstags")
@click.pass_context
def main(ctx: click.Context, database_url: str | None, data_dir: Path | None) -> None:
    """imstags: the IMS image-tag API and its image catalog."""
    ctx.obj = Context({"database_url": database_url, "data_dir": data_dir})


def _open_database(settings: Settings, migrate: bool = True):  # noqa: ANN202 - returns Database
    from imstags.storage.database import Database
    from imstags.storage.migrate import upgrade

    settings.ensure_data_dir()
    if migrate:
        upgrade(settings.resolved_database_url)
    return Database(settings.resolved_database_url)


@main.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 9292).")
@click.option("--workers", type=int, help="Worker processes (default 1).")
@click.option("--log-level", help="debug, info, warning or error.")
@pass_context
def serve(
    ctx: Context, host: str | None, port: int | None, workers: int | None, log_level: str | None
) -> None:
    """Serve every API on one port, after applying pending migrations."""
    import uvicorn

    settings = ctx.settings(host=host, port=port, workers=workers, log_level=log_level)
    logging.basicConfig(level=settings.log_level.upper())
    _open_database(settings).dispose()
    click.echo(
        f"imstags serving on http://{settings.host}:{settings.port} "
        f"(database: {_redact(settings.resolved_database_url)}, workers: {settings.workers})",
        err=True,
    )
    if settings.workers > 1:
        # Workers are fresh processes: hand them the resolved settings through the environment.
        for name, value in settings.model_dump(mode="json").items():
            if value is not None:
                os.environ[f"IMSTAGS_{name.upper()}"] = str(value)
        uvicorn.run(
            "imstags.api.app:create_app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            access_log=False,
        )
    else:
        from imstags.api.app import create_app

        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            access_log=False,
        )


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_context
def db_upgrade(ctx: Context) -> None:
    """Apply all pending migrations."""
    settings = ctx.settings()
    _open_database(settings).dispose()
    click.echo(f"database at the newest schema: {_redact(settings.resolved_database_url)}")


@main.group()
def credentials() -> None:
    """AK/SK credentials for request signing."""


def _box(settings: Settings):  # noqa: ANN202 - returns SecretBox
    from imstags.domain.secrets import SecretBox, load_or_create_key

    return SecretBox(load_or_create_key(settings.secret_key, settings.ensure_data_dir()))


@credentials.command("create")
@click.option("--project-id", required=True, help="The project the credential acts for.")
@click.option("--description", default="", help="A note to tell credentials apart.")
@pass_context
def credentials_create(ctx: Context, project_id: str, description: str) -> None:
    """Create an AK/SK pair; prints it as JSON (the secret is shown only here)."""
    from imstags.domain.credentials import create_credential_tx

    settings = ctx.settings()
    database = _open_database(settings)
    box = _box(settings)
    try:
        issued = database.write(lambda s: create_credential_tx(s, box, project_id, description))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--project-id") from exc
    finally:
        database.dispose()
    click.echo(
        json.dumps(
            {"access": issued.access, "secret": issued.secret, "project_id": issued.project_id}
        )
    )


@credentials.command("list")
@click.option("--project-id", help="Only this project's credentials.")
@pass_context
def credentials_list(ctx: Context, project_id: str | None) -> None:
    """List access keys (never secrets) as JSON lines."""
    from imstags.domain.credentials import list_credentials

    database = _open_database(ctx.settings())
    try:
        with database.read() as session:
            rows = list_credentials(session, project_id)
    finally:
        database.dispose()
    for row in rows:
        click.echo(
            json.dumps(
                {
                    "access": row.access,
                    "project_id": row.project_id,
                    "description": row.description,
                    "created_at": row.created_at.isoformat(),
                }
            )
        )


@credentials.command("delete")
@click.argument("access")
@pass_context
def credentials_delete(ctx: Context, access: str) -> None:
    """Delete the credential with this access key."""
    from imstags.domain.credentials import delete_credential_tx

    database = _open_database(ctx.settings())
    try:
        deleted = database.write(lambda s: delete_credential_tx(s, access))
    finally:
        database.dispose()
    if not deleted:
        raise click.ClickException(f"no credential with access key {access}")
    click.echo(f"deleted {access}")
