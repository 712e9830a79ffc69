"""What every subcommand shares: the settings context and opening the database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from imstags.settings import Settings

if TYPE_CHECKING:
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


def secret_box(settings: Settings) -> SecretBox:
    from imstags.domain.secrets import SecretBox, load_or_create_key

    return SecretBox(load_or_create_key(settings.secret_key, settings.ensure_data_dir()))


def redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
