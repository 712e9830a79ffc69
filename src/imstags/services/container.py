"""Every service of one process, built once from one settings object.

The app factory (:func:`imstags.api.app.create_app`) and the CLI build a :class:`Services`
here and pass it on; nothing below reads settings from anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

from imstags.domain.secrets import SecretBox, load_or_create_key
from imstags.domain.throttle import Limit, LoginThrottle
from imstags.services.auth import Authenticator
from imstags.services.faults import FaultBook, load_rules
from imstags.services.health import HealthService
from imstags.services.identity import IdentityService, PasswordChecks
from imstags.services.image_data import ImageDataService
from imstags.services.images import ImageService
from imstags.services.metrics import instrument_database
from imstags.services.state import StateService
from imstags.services.tags import TagService
from imstags.services.writes import WriteRunner
from imstags.settings import Settings
from imstags.storage.database import Database
from imstags.storage.image_store import DirectoryStore


@dataclass
class Services:
    """What handlers reach through ``request.app.state.services``."""

    settings: Settings
    db: Database
    box: SecretBox
    authenticator: Authenticator
    tags: TagService
    writes: WriteRunner
    images: ImageService
    image_data: ImageDataService
    identity: IdentityService
    health: HealthService
    state: StateService
    faults: FaultBook

    def close(self) -> None:
        """Let queued writes finish (at the app's shutdown)."""
        self.writes.close()
        self.identity.close()


def build_services(settings: Settings, db: Database | None = None) -> Services:
    settings.ensure_data_dir()
    box = SecretBox(load_or_create_key(settings.secret_key, settings.data_dir))
    database = db or Database(
        settings.resolved_database_url,
        lock_timeout=settings.database_lock_timeout_seconds,
        statement_timeout=settings.database_statement_timeout_seconds,
        write_connections=settings.write_connections,
    )
    if settings.metrics_access != "off":
        instrument_database(database)
    writes = WriteRunner(
        database, threads=settings.write_threads, deadline=settings.database_deadline_seconds
    )
    store = DirectoryStore(settings.resolved_image_store_dir)
    store.prepare()
    window = settings.login_failure_window_seconds
    identity = IdentityService(
        database,
        writes,
        # Failed logins, counted per process: per (user, client address), and per client
        # address across users.
        LoginThrottle(
            Limit(settings.login_failures_per_user, window),
            Limit(settings.login_failures_per_client, window),
        ),
        PasswordChecks(settings.login_threads, settings.login_queue),
        token_ttl_seconds=settings.token_ttl_seconds,
    )
    return Services(
        settings=settings,
        db=database,
        box=box,
        authenticator=Authenticator(
            database,
            box,
            date_window_seconds=settings.sdk_date_window_seconds,
            credential_cache_seconds=settings.credential_cache_seconds,
            token_validator=identity.principal_of_token,
            max_authorization_bytes=settings.max_authorization_bytes,
            memo_max_head_bytes=settings.signature_memo_max_head_bytes,
            unknown_key_cache_size=settings.unknown_access_key_cache_size,
            unsigned_payload_media_types=frozenset(
                media.strip().lower()
                for media in settings.unsigned_payload_media_types.split(",")
                if media.strip()
            ),
        ),
        tags=TagService(database, writes),
        writes=writes,
        images=ImageService(database, writes, store),
        image_data=ImageDataService(
            database, writes, store, max_image_bytes=settings.max_image_bytes
        ),
        identity=identity,
        health=HealthService(database, timeout=settings.readiness_timeout_seconds),
        state=StateService(database, box, writes),
        faults=FaultBook(load_rules(settings.faults_file) if settings.faults_file else ()),
    )
