"""What every subcommand shares: the settings context and the services of one command."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
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
