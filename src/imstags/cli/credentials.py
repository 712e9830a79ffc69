"""``imstags credentials ...``: AK/SK pairs for request signing."""

from __future__ import annotations

import json

import click

from imstags.cli.common import (
    Context,
    database_of,
    delete_one,
    echo_json_lines,
    open_database,
    pass_context,
    secret_box,
)
from imstags.errors import ImsError


@click.group()
def credentials() -> None:
    """AK/SK credentials for request signing."""


@credentials.command("create")
@click.option("--project-id", required=True, help="The project the credential acts for.")
@click.option("--description", default="", help="A note to tell credentials apart.")
@pass_context
def create(ctx: Context, project_id: str, description: str) -> None:
    """Create an AK/SK pair; prints it as JSON (the secret is shown only here)."""
    from imstags.domain.credentials import create_credential_tx

    settings = ctx.settings()
    database = open_database(settings)
    box = secret_box(settings)
    try:
        issued = database.write(lambda s: create_credential_tx(s, box, project_id, description))
    except ImsError as exc:
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
def list_(ctx: Context, project_id: str | None) -> None:
    """List access keys (never secrets) as JSON lines."""
    from imstags.domain.credentials import list_credentials

    with database_of(ctx) as database, database.read() as session:
        rows = list_credentials(session, project_id)
    echo_json_lines(
        {
            "access": row.access,
            "project_id": row.project_id,
            "description": row.description,
            "created_at": row.created_at.isoformat(),
        }
        for row in rows
    )


@credentials.command("delete")
@click.argument("access")
@pass_context
def delete(ctx: Context, access: str) -> None:
    """Delete the credential with this access key."""
    from imstags.domain.credentials import delete_credential_tx

    delete_one(
        ctx,
        lambda s: delete_credential_tx(s, access),
        name=access,
        what="credential with access key",
    )
