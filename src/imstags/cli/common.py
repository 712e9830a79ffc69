"""What every subcommand shares: the settings context and the services of one command."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from imstags.services.admin import AdminServices, admin_services
from imstags.settings import Settings


class Context:
    """Holds the global flags; ``settings()`` adds a command's own flags on top."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides

    def settings(self, **more: Any) -> Settings:
        return Settings.load(**{**self.overrides, **more})


pass_context = click.make_pass_decorator(Context)

DATABASE_HELP = "SQLAlchemy database URL."
DATA_DIR_HELP = "Where the default SQLite file and the secret-encryption key live."


def accept_global_options(group: click.Group) -> None:
    """Let every subcommand (and subgroup) take ``--database`` and ``--data-dir`` too, so that
    ``imstags serve --data-dir DIR`` works as users type it; the value given last wins."""
    for command in group.commands.values():
        command.params.extend(
            [
                click.Option(
                    ["--database", "database_url"],
                    help=DATABASE_HELP,
                    expose_value=False,
                    callback=_remember_global,
                ),
                click.Option(
                    ["--data-dir", "data_dir"],
                    type=click.Path(path_type=Path),
                    help=DATA_DIR_HELP,
                    expose_value=False,
                    callback=_remember_global,
                ),
            ]
        )
        if isinstance(command, click.Group):
            accept_global_options(command)


def _remember_global(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is not None and param.name is not None:
        ctx.ensure_object(Context).overrides[param.name] = value


@contextmanager
def services_of(ctx: Context) -> Iterator[AdminServices]:
    """The command's services, on its database migrated to the newest schema (commands never
    see an old one), closed when the command is done with them."""
    with admin_services(ctx.settings()) as services:
        yield services


def echo_json_lines(records: Iterable[Mapping[str, object]]) -> None:
    for record in records:
        click.echo(json.dumps(record))


def deleted_or_fail(deleted: bool, *, name: str, what: str) -> None:
    """A thing that was not there to delete is an error (exit status 1)."""
    if not deleted:
        raise click.ClickException(f"no {what} {name}")
    click.echo(f"deleted {name}")
