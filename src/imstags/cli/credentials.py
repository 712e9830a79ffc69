"""``imstags credentials ...``: AK/SK pairs for request signing."""

from __future__ import annotations

import json

import click

from imstags.cli.common import (
    Context,
    deleted_or_fail,
    echo_json_lines,
    pass_context,
    services_of,
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
    with services_of(ctx) as services:
        try:
            issued = services.accounts.create_credential(project_id, description)
        except ImsError as exc:
            raise click.BadParameter(str(exc), param_hint="--project-id") from exc
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
    with services_of(ctx) as services:
        rows = services.accounts.list_credentials(project_id)
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
    with services_of(ctx) as services:
        deleted = services.accounts.delete_credential(access)
    deleted_or_fail(deleted, name=access, what="credential with access key")
