"""AK/SK credentials: an access key names a project; its secret signs requests."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from imstags.domain.projects import check_project_id
from imstags.domain.secrets import SecretBox
from imstags.storage.models import Credential

_AK_ALPHABET = string.ascii_uppercase + string.digits
AK_LENGTH = 20
SK_LENGTH = 40


@dataclass(frozen=True)
class IssuedCredential:
    access: str
    secret: str
    project_id: str


@dataclass(frozen=True)
class StoredCredential:
    access: str
    project_id: str
    description: str
    created_at: datetime


def create_credential_tx(
    session: Session, box: SecretBox, project_id: str, description: str = ""
) -> IssuedCredential:
    check_project_id(project_id)
    access = "".join(secrets.choice(_AK_ALPHABET) for _ in range(AK_LENGTH))
    secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(SK_LENGTH))
    store_credential_tx(session, box, access, secret, project_id, description)
    return IssuedCredential(access, secret, project_id)


def store_credential_tx(
    session: Session, box: SecretBox, access: str, secret: str, project_id: str, description: str
) -> None:
    """Add one AK/SK pair, its secret sealed: the one place a credential row is written
    (new pairs here, given pairs by the emulator's seed)."""
    session.add(
        Credential(
            access=access,
            secret_encrypted=box.seal(secret),
            project_id=project_id,
            description=description,
            created_at=datetime.now(UTC),
        )
    )


def list_credentials(session: Session, project_id: str | None = None) -> list[StoredCredential]:
    stmt = select(Credential).order_by(Credential.created_at, Credential.access)
    if project_id:
        stmt = stmt.where(Credential.project_id == project_id)
    return [
        StoredCredential(c.access, c.project_id, c.description, c.created_at)
        for c in session.scalars(stmt)
    ]


def delete_credential_tx(session: Session, access: str) -> bool:
    result = session.execute(delete(Credential).where(Credential.access == access))
    return bool(result.rowcount)  # type: ignore[attr-defined]  # CursorResult has rowcount


def find_secret(session: Session, box: SecretBox, access: str) -> tuple[str, str] | None:
    """(project_id, secret) of an access key, or None."""
    row = session.execute(
        select(Credential.project_id, Credential.secret_encrypted).where(
            Credential.access == access
        )
    ).first()
    if row is None:
        return None
    return row.project_id, box.open(row.secret_encrypted)


def reseal_secrets_tx(session: Session, opener: SecretBox, sealer: SecretBox) -> int:
    """Re-encrypt every stored secret: opened with ``opener``'s keys, sealed with ``sealer``'s
    first key. Returns how many; one transaction, so either all move or none."""
    count = 0
    for row in session.scalars(select(Credential)):
        row.secret_encrypted = sealer.seal(opener.open(row.secret_encrypted))
        count += 1
    return count
