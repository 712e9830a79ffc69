"""What the command line does to a database: the schema, credentials and users.

The CLI's commands are one call each into here (or into :mod:`.bulk_import` and
:mod:`.consistency`); a method opens its own transaction. Plain ``def`` methods: no event loop
runs in a command.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from imstags.domain.credentials import (
    IssuedCredential,
    StoredCredential,
    create_credential_tx,
    delete_credential_tx,
    list_credentials,
    reseal_secrets_tx,
)
from imstags.domain.identity import UserInfo, create_user_tx, delete_user_tx, list_users
from imstags.domain.operator_listing import (
    ImageLine,
    TagCountLine,
    iter_images,
    iter_tag_counts,
)
from imstags.domain.secrets import SecretBox, load_or_create_key, replace_key_file
from imstags.services.bulk_import import ImportService
from imstags.services.consistency import ConsistencyService
from imstags.services.state import StateService
from imstags.settings import Settings
from imstags.storage.database import Database, url_for_display
from imstags.storage.load_indexes import rebuild_missing_indexes
from imstags.storage.migrate import upgrade


@dataclass(frozen=True)
class SchemaUpgrade:
    shown_url: str  # the database's URL fit to print (no password)
    applied: list[str]  # migration revisions applied now, oldest first
    rebuilt: list[str] = field(default_factory=list)  # indexes a dead bulk load left missing


def upgrade_schema(settings: Settings) -> SchemaUpgrade:
    """Apply pending migrations, and build the indexes that a bulk load which died before
    its end left missing (:mod:`imstags.storage.load_indexes`): every command runs this
    first, so the next one repairs the schema."""
    settings.ensure_data_dir()
    applied = upgrade(settings.resolved_database_url)
    rebuilt = rebuild_missing_indexes(settings.resolved_database_url)
    return SchemaUpgrade(url_for_display(settings.resolved_database_url), applied, rebuilt)


class AccountService:
    """AK/SK credentials and password users, as the operator manages them."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings

    def _box(self) -> SecretBox:
        # Only creating a credential needs the key; loading it may create the key file.
        settings = self._settings
        return SecretBox(load_or_create_key(settings.secret_key, settings.ensure_data_dir()))

    def create_credential(self, project_id: str, description: str) -> IssuedCredential:
        box = self._box()
        return self._db.write(lambda s: create_credential_tx(s, box, project_id, description))

    def list_credentials(self, project_id: str | None) -> list[StoredCredential]:
        with self._db.read() as session:
            return list_credentials(session, project_id)

    def rotate_secret_key(self, new_key: str) -> KeyRotation:
        """Re-encrypt every stored AK/SK secret under ``new_key``, in one transaction.

        The secrets are opened with the configured key(s); when the key lives in the data
        directory's key file (no ``secret_key`` setting), the file is replaced by the new key
        after the commit, keeping the old one beside it until the operator deletes it.
        """
        sealer = SecretBox(new_key)
        count = self._db.write(lambda s: reseal_secrets_tx(s, self._box(), sealer))
        key_file = None
        if not self._settings.secret_key:
            key_file = replace_key_file(self._settings.ensure_data_dir(), new_key)
        return KeyRotation(count, key_file)

    def delete_credential(self, access: str) -> bool:
        return self._db.write(lambda s: delete_credential_tx(s, access))

    def create_user(
        self, name: str, password: str, project_id: str, project_name: str | None
    ) -> UserInfo:
        return self._db.write(lambda s: create_user_tx(s, name, password, project_id, project_name))

    def list_users(self, project_id: str | None) -> list[UserInfo]:
        with self._db.read() as session:
            return list_users(session, project_id)

    def delete_user(self, name: str) -> bool:
        return self._db.write(lambda s: delete_user_tx(s, name))


class CatalogViews:
    """The operator's read-only views: images and the tag aggregate, streamed."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def images(self, project_id: str | None, limit: int | None) -> Iterator[ImageLine]:
        with self._db.read() as session:
            yield from iter_images(session, project_id, limit)

    def tag_counts(self, project_id: str | None) -> Iterator[TagCountLine]:
        with self._db.read() as session:
            yield from iter_tag_counts(session, project_id)


@dataclass(frozen=True)
class KeyRotation:
    secrets: int  # how many stored secrets were re-encrypted
    key_file: Path | None  # the key file now holding the new key (None: the key is a setting)


@dataclass
class AdminServices:
    """The services of one command, on one database (migrated to the newest schema)."""

    accounts: AccountService
    imports: ImportService
    consistency: ConsistencyService
    views: CatalogViews
    state: StateService


@contextmanager
def admin_services(settings: Settings) -> Iterator[AdminServices]:
    """Migrate, open the database, and close it when the command is done."""
    upgrade_schema(settings)
    db = Database(settings.resolved_database_url)
    try:
        yield AdminServices(
            accounts=AccountService(db, settings),
            imports=ImportService(db),
            consistency=ConsistencyService(db),
            views=CatalogViews(db),
            state=StateService(
                db, SecretBox(load_or_create_key(settings.secret_key, settings.data_dir))
            ),
        )
    finally:
        db.dispose()
