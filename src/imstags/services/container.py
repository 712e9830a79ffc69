"""Every service of one process, built once from one settings object.

The app factory (:func:`imstags.api.app.create_app`) and the CLI build a :class:`Services`
here and pass it on; nothing below reads settings from anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

from imstags.domain.secrets import SecretBox, load_or_create_key
from imstags.domain.throttle import Limit, LoginThrottle
from imstags.services.auth import Authenticator, token_validator
from imstags.services.tags import TagService
from imstags.services.writes import WriteRunner
from imstags.settings import Settings
from imstags.storage.database import Database


@dataclass
class Services:
    """What handlers reach through ``request.app.state.services``."""

    settings: Settings
    db: Database
    box: SecretBox
    authenticator: Authenticator
    tags: TagService
    login_throttle: LoginThrottle
    writes: WriteRunner

    def close(self) -> None:
        """Let queued writes finish (at the app's shutdown)."""
        self.writes.close()


def build_services(settings: Settings, db: Database | None = None) -> Services:
    settings.ensure_data_dir()
    box = SecretBox(load_or_create_key(settings.secret_key, settings.data_dir))
    database = db or Database(settings.resolved_database_url)
    window = settings.login_failure_window_seconds
    writes = WriteRunner(database, threads=settings.write_threads)
    return Services(
        settings=settings,
        db=database,
        box=box,
        authenticator=Authenticator(
            database,
            box,
            date_window_seconds=settings.sdk_date_window_seconds,
            credential_cache_seconds=settings.credential_cache_seconds,
            token_validator=token_validator(database),
        ),
        tags=TagService(database, writes),
        # Failed logins, counted per process: per user named in the request, and per client
        # address across users.
        login_throttle=LoginThrottle(
            Limit(settings.login_failures_per_user, window),
            Limit(settings.login_failures_per_client, window),
        ),
        writes=writes,
    )
