"""Identity: users with passwords, and the Keystone-style tokens they are issued.

Users live in one domain (name ``Default``, id ``default``) and each has a role on one project.
Passwords are stored as argon2id hashes. A token is 256 random bits handed out once; the
database keeps only its SHA-256, so a leaked database yields no usable token. A token carries
its project; it is valid until ``expires_at`` unless revoked, and it stops working at once when
its user is disabled or deleted.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from imstags.domain.projects import check_project_id, name_project_tx, project_name, resolve_project
from imstags.errors import AttributeConflict, BadRequest, Unauthorized
from imstags.storage.models import Token, User

DOMAIN_ID = "default"
DOMAIN_NAME = "Default"
ROLE_NAMES = ("member", "reader")
USER_NAME_MAX_LENGTH = 255
PASSWORD_MAX_LENGTH = 4096

_hasher = PasswordHasher()
# Verified when the user is unknown, so that the answer takes as long as for a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class UserInfo:
    id: str
    name: str
    project_id: str
    enabled: bool
    created_at: datetime


@dataclass(frozen=True)
class TokenInfo:
    """What a token stands for: the Keystone token body is rendered from it."""

    user_id: str
    user_name: str
    project_id: str
    project_name: str
    issued_at: datetime
    expires_at: datetime
    audit_id: str
    methods: tuple[str, ...] = ("password",)


@dataclass(frozen=True)
class PasswordAuth:
    """The parts of a Keystone password request that identify the user and the scope."""

    password: str
    user_id: str | None = None
    user_name: str | None = None
    user_domain_id: str | None = None
    user_domain_name: str | None = None
    project_id: str | None = None
    project_name: str | None = None
    project_domain_id: str | None = None
    project_domain_name: str | None = None


# --- users -----------------------------------------------------------------------------------


def create_user_tx(
    session: Session,
    name: str,
    password: str,
    project_id: str,
    project_name_: str | None = None,
) -> UserInfo:
    """A new enabled user of ``project_id``; ``BadRequest`` or ``AttributeConflict`` for bad
    or duplicate input."""
    if not name or len(name) > USER_NAME_MAX_LENGTH:
        raise BadRequest(f"A user name is 1 to {USER_NAME_MAX_LENGTH} characters.")
    if not password or len(password) > PASSWORD_MAX_LENGTH:
        raise BadRequest(f"A password is 1 to {PASSWORD_MAX_LENGTH} characters.")
    check_project_id(project_id)
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise AttributeConflict(f"A user named '{name}' already exists.")
    name_project_tx(session, project_id, project_name_)
    user = User(
        id=uuid.uuid4().hex,
        name=name,
        domain_id=DOMAIN_ID,
        password_hash=_hasher.hash(password),
        project_id=project_id,
        enabled=True,
        created_at=_now(),
    )
    session.add(user)
    session.flush()
    return _user_info(user)


def list_users(session: Session, project_id: str | None = None) -> list[UserInfo]:
    stmt = select(User).order_by(User.name)
    if project_id:
        stmt = stmt.where(User.project_id == project_id)
    return [_user_info(user) for user in session.scalars(stmt)]


def delete_user_tx(session: Session, name: str) -> bool:
    """Delete a user; its tokens go with it (and stop working at once)."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        return False
    session.execute(delete(Token).where(Token.user_id == user.id))
    session.delete(user)
    return True


def _user_info(user: User) -> UserInfo:
    return UserInfo(user.id, user.name, user.project_id, user.enabled, user.created_at)


# --- tokens ----------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class LoginCandidate:
    """Whom a password request names, read before the (slow) password check.

    ``user_id`` is who logs in if the password verifies (None: nobody can, e.g. an unknown
    name, or an ``id`` and a ``name`` of different users); ``throttle_user`` is whose
    failure counter an attempt counts against (the user the request resolves to, None for
    a name that resolves to no one). ``password_hash`` is the dummy hash when ``user_id`` is
    None, so that every answer costs one argon2 verification.
    """

    user_id: str | None
    throttle_user: str | None
    password_hash: str


def find_login_candidate(session: Session, auth: PasswordAuth) -> LoginCandidate:
    user = _find_user(session, auth)
    if user is None:
        return LoginCandidate(None, None, _DUMMY_HASH)
    if auth.user_id and auth.user_name is not None and auth.user_name != user.name:
        # An id and a name that disagree: refused, and counted against the user of the id.
        return LoginCandidate(None, user.id, _DUMMY_HASH)
    return LoginCandidate(user.id, user.id, user.password_hash)


def password_matches(candidate: LoginCandidate, password: str) -> bool:
    """The argon2 check (about 0.1 s of CPU): run it outside any transaction."""
    try:
        _hasher.verify(candidate.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    return candidate.user_id is not None


def store_login_token_tx(
    session: Session,
    auth: PasswordAuth,
    candidate: LoginCandidate,
    ttl_seconds: int,
    now: datetime | None = None,
) -> tuple[str, TokenInfo]:
    """The token for a verified candidate. The user is read again: if it was disabled,
    deleted or given another password since the check, the login fails like a wrong password.
    """
    now = now or _now()
    user = session.get(User, candidate.user_id) if candidate.user_id else None
    if user is None or not user.enabled or user.password_hash != candidate.password_hash:
        raise Unauthorized("The request you have made requires authentication.")
    project_id = _scoped_project(session, auth, user)
    return _store_token(
        session, user, project_id, now, now + timedelta(seconds=ttl_seconds), ("password",)
    )


def issue_token_tx(
    session: Session, auth: PasswordAuth, ttl_seconds: int, now: datetime | None = None
) -> tuple[str, TokenInfo]:
    """Check the password and the scope in one transaction (the CLI and tests; the API splits
    these steps so that the password check holds no transaction open).

    Any mismatch (unknown user or domain, wrong password, disabled user, a project the user has
    no role on) is the same 401, so the answer does not tell which part was wrong.
    """
    candidate = find_login_candidate(session, auth)
    if not password_matches(candidate, auth.password):
        raise Unauthorized("The request you have made requires authentication.")
    return store_login_token_tx(session, auth, candidate, ttl_seconds, now)


def reissue_token_tx(
    session: Session,
    token: str,
    project_id: str | None,
    project_name_: str | None,
    now: datetime | None = None,
) -> tuple[str, TokenInfo]:
    """Keystone's ``token`` method: a new token for the same user from a valid one.

    The scope may name only the user's project again; the new token expires when the one
    it was made from does, so re-issuing never extends a token's life.
    """
    now = now or _now()
    current = read_valid_token(session, token, now)
    user = session.get(User, current.user_id)
    if user is None:  # deleted since read_valid_token read it
        raise Unauthorized("The token is unknown.")
    scope = PasswordAuth(password="", project_id=project_id, project_name=project_name_)
    scoped = _scoped_project(session, scope, user)
    return _store_token(session, user, scoped, now, current.expires_at, ("token",))


def _store_token(
    session: Session,
    user: User,
    project_id: str,
    now: datetime,
    expires_at: datetime,
    methods: tuple[str, ...],
) -> tuple[str, TokenInfo]:
    token = secrets.token_urlsafe(32)
    # Expired tokens are of no use to anyone: drop them (an index range) as new ones come.
    session.execute(delete(Token).where(Token.expires_at < now))
    session.add(
        Token(
            token_hash=hash_token(token),
            user_id=user.id,
            project_id=project_id,
            issued_at=now,
            expires_at=expires_at,
            revoked=False,
        )
    )
    info = TokenInfo(
        user_id=user.id,
        user_name=user.name,
        project_id=project_id,
        project_name=project_name(session, project_id),
        issued_at=now,
        expires_at=expires_at,
        audit_id=_audit_id(hash_token(token)),
        methods=methods,
    )
    return token, info


def _find_user(session: Session, auth: PasswordAuth) -> User | None:
    if auth.user_domain_id not in (None, DOMAIN_ID) or auth.user_domain_name not in (
        None,
        DOMAIN_NAME,
    ):
        return None
    if auth.user_id:
        return session.get(User, auth.user_id)
    if auth.user_name:
        if auth.user_domain_id is None and auth.user_domain_name is None:
            return None  # Keystone requires the domain with a user name
        return session.scalar(select(User).where(User.name == auth.user_name))
    return None


def _scoped_project(session: Session, auth: PasswordAuth, user: User) -> str:
    """The project of the scope; a request without one gets the user's own project."""
    if auth.project_domain_id not in (None, DOMAIN_ID) or auth.project_domain_name not in (
        None,
        DOMAIN_NAME,
    ):
        raise Unauthorized("The user has no access to a project of that domain.")
    if auth.project_id is None and auth.project_name is None:
        return user.project_id
    project_id = resolve_project(session, auth.project_id, auth.project_name)
    if project_id != user.project_id:
        raise Unauthorized("The user has no access to the project in the scope.")
    return project_id


def read_valid_token(session: Session, token: str, now: datetime | None = None) -> TokenInfo:
    """What a valid token stands for; 401 for an unknown, expired or revoked token."""
    now = now or _now()
    row = session.execute(
        select(Token, User)
        .join(User, User.id == Token.user_id)
        .where(Token.token_hash == hash_token(token))
    ).first()
    if row is None:
        raise Unauthorized("The token is unknown.")
    stored, user = row
    if stored.revoked:
        raise Unauthorized("The token has been revoked.")
    expires_at = _aware(stored.expires_at)
    if expires_at <= now:
        raise Unauthorized("The token has expired.")
    if not user.enabled:
        raise Unauthorized("The token's user is disabled.")
    return TokenInfo(
        user_id=user.id,
        user_name=user.name,
        project_id=stored.project_id,
        project_name=project_name(session, stored.project_id),
        issued_at=_aware(stored.issued_at),
        expires_at=expires_at,
        audit_id=_audit_id(stored.token_hash),
    )


def revoke_token_tx(session: Session, token: str) -> bool:
    stored = session.get(Token, hash_token(token))
    if stored is None or stored.revoked:
        return False
    stored.revoked = True
    return True


def _audit_id(token_hash: str) -> str:
    """A stable public id of a token (Keystone's ``audit_ids``) that reveals nothing of it."""
    return hashlib.sha256(("audit:" + token_hash).encode()).hexdigest()[:22]


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without a zone; every stored time is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
