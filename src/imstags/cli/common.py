"""What every subcommand shares: the settings context and opening the database."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from imstags.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from imstags.domain.secrets import SecretBox
    from imstags.storage.database import Database


class Context:
    """Holds the global flags; ``settings()`` adds a command's own flags on top."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides

    def settings(self, **more: Any) -> Settings:
        return Settings.load(**{**self.overrides, **more})


pass_context = click.make_pass_decorator(Context)


def open_database(settings: Settings, migrate: bool = True) -> Database:
    """The database, migrated to the newest schema first (commands never see an old one)."""
    from imstags.storage.database import Database
    from imstags.storage.migrate import upgrade

    settings.ensure_data_dir()
    if migrate:
        upgrade(settings.resolved_database_url)
    return Database(settings.resolved_database_url)


@contextmanager
def database_of(ctx: Context) -> Iterator[Database]:
    """The command's database (migrated), closed when the command is done with it."""
    database = open_database(ctx.settings())
    try:
        yield database
    finally:
        database.dispose()


def echo_json_lines(records: Iterable[Mapping[str, object]]) -> None:
    for record in records:
        click.echo(json.dumps(record))


def delete_one(ctx: Context, work: Callable[[Session], bool], *, name: str, what: str) -> None:
    """Run a delete transaction; a thing that was not there is an error (exit status 1)."""
    with database_of(ctx) as database:
        deleted = database.write(work)
    if not deleted:
        raise click.ClickException(f"no {what} {name}")
    click.echo(f"deleted {name}")


def secret_box(settings: Settings) -> SecretBox:
    from imstags.domain.secrets import SecretBox, load_or_create_key

    return SecretBox(load_or_create_key(settings.secret_key, settings.ensure_data_dir()))


def redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
