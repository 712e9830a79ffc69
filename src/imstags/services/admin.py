"""What the command line does to a database: the schema, credentials and users.

The CLI's commands are one call each into here (or into :mod:`.bulk_import` and
:mod:`.consistency`); a method opens its own transaction. Plain ``def`` methods: no event loop
runs in a command.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from imstags.domain.credentials import (
    IssuedCredential,
    StoredCredential,
    create_credential_tx,
    delete_credential_tx,
    list_credentials,
)
from imstags.domain.identity import UserInfo, create_user_tx, delete_user_tx, list_users
from imstags.domain.secrets import SecretBox, load_or_create_key
from imstags.services.bulk_import import ImportService
from imstags.services.consistency import ConsistencyService
from imstags.services.state import StateService
from imstags.settings import Settings
from imstags.storage.database import Database, url_for_display
from imstags.storage.migrate import upgrade


def upgrade_schema(settings: Settings) -> str:
    """Apply pending migrations; returns the database's URL fit to print (no password)."""
    settings.ensure_data_dir()
    upgrade(settings.resolved_database_url)
    return url_for_display(settings.resolved_database_url)


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


@dataclass
class AdminServices:
    """The services of one command, on one database (migrated to the newest schema)."""

    accounts: AccountService
    imports: ImportService
    consistency: ConsistencyService
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
            state=StateService(
                db, SecretBox(load_or_create_key(settings.secret_key, settings.data_dir))
            ),
        )
    finally:
        db.dispose()
