"""``imstags users ...``: users who get Keystone tokens with a password."""

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
def users() -> None:
    """Users of the Keystone v3 token API (domain 'Default')."""


@users.command("create")
@click.option("--name", required=True, help="User name, unique.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="The password (asked for when not given; stored as an argon2 hash).",
)
@click.option("--project-id", required=True, help="The project the user has a role on.")
@click.option("--project-name", default=None, help="Also name the project, to scope to it by name.")
@pass_context
def create(
    ctx: Context, name: str, password: str, project_id: str, project_name: str | None
) -> None:
    """Create a user; prints it as JSON (never the password)."""
    try:
        with services_of(ctx) as services:
            user = services.accounts.create_user(name, password, project_id, project_name)
    except ImsError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        json.dumps(
            {
                "id": user.id,
                "name": user.name,
                "domain_id": "default",
                "project_id": user.project_id,
            }
        )
    )


@users.command("list")
@click.option("--project-id", help="Only this project's users.")
@pass_context
def list_(ctx: Context, project_id: str | None) -> None:
    """List users as JSON lines."""
    with services_of(ctx) as services:
        rows = services.accounts.list_users(project_id)
    echo_json_lines(
        {
            "id": user.id,
            "name": user.name,
            "project_id": user.project_id,
            "enabled": user.enabled,
            "created_at": user.created_at.isoformat(),
        }
        for user in rows
    )


@users.command("delete")
@click.argument("name")
@pass_context
def delete(ctx: Context, name: str) -> None:
    """Delete a user; its tokens stop working at once."""
    with services_of(ctx) as services:
        deleted = services.accounts.delete_user(name)
    deleted_or_fail(deleted, name=name, what="user named")
