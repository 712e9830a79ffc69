"""Identity use cases: Keystone password login (throttled), token re-issue, inspection and
revocation, and the check of ``X-Auth-Token`` that the authenticator runs on every request."""

from __future__ import annotations

from dataclasses import dataclass

from imstags.domain import identity
from imstags.domain.throttle import LoginThrottle, user_key
from imstags.errors import Forbidden, NotFound, TooManyRequests, Unauthorized
from imstags.services.auth import Principal
from imstags.services.threads import run_blocking
from imstags.services.writes import WriteRunner
from imstags.storage.database import Database


@dataclass(frozen=True)
class IssuedToken:
    """A new token (shown once) and what it stands for."""

    token: str
    info: identity.TokenInfo


class IdentityService:
    def __init__(
        self, db: Database, writes: WriteRunner, throttle: LoginThrottle, *, token_ttl_seconds: int
    ) -> None:
        self._db = db
        self._writes = writes
        self._throttle = throttle
        self._ttl = token_ttl_seconds

    async def login(self, auth: identity.PasswordAuth, client: str) -> IssuedToken:
        """Check a password and issue a token. Failed logins are throttled per user named in
        the request and per client address (429, checked before the password is: see
        :mod:`imstags.domain.throttle`)."""
        user = user_key([auth.user_id, auth.user_name, auth.user_domain_id, auth.user_domain_name])
        wait = self._throttle.retry_after(user, client)
        if wait:
            raise TooManyRequests(wait, f"Too many failed logins; try again in {wait} seconds.")
        try:
            token, info = await self._writes.run(
                self._db.write,
                lambda session: identity.issue_token_tx(session, auth, self._ttl),
            )
        except Unauthorized:
            self._throttle.failed(user, client)
            raise
        self._throttle.succeeded(user)
        return IssuedToken(token, info)

    async def reissue(
        self, token: str, project_id: str | None, project_name: str | None
    ) -> IssuedToken:
        """Keystone's ``token`` method. Not throttled: a token cannot be guessed."""
        new_token, info = await self._writes.run(
            self._db.write,
            lambda session: identity.reissue_token_tx(session, token, project_id, project_name),
        )
        return IssuedToken(new_token, info)

    async def inspect(self, caller_user_id: str | None, subject: str) -> identity.TokenInfo:
        """The subject token, which the caller may inspect or revoke only if it is its own
        user's; an invalid subject is 404."""
        try:
            info = await run_blocking(self._validate, subject)
        except Unauthorized as exc:
            raise NotFound(f"Could not find token: {exc.message}") from exc
        if caller_user_id != info.user_id:
            raise Forbidden("A token can be inspected or revoked only by its own user.")
        return info

    async def revoke(self, caller_user_id: str | None, subject: str) -> None:
        await self.inspect(caller_user_id, subject)
        await self._writes.run(
            self._db.write, lambda session: identity.revoke_token_tx(session, subject)
        )

    def principal_of_token(self, token: str) -> Principal:
        """The :class:`~imstags.services.auth.Authenticator`'s check of ``X-Auth-Token``.

        One primary-key read per request, no cache: a revoked token stops working at once, in
        every process.
        """
        info = self._validate(token)
        return Principal(project_id=info.project_id, method="token", user_id=info.user_id)

    def _validate(self, token: str) -> identity.TokenInfo:
        with self._db.read() as session:
            return identity.read_valid_token(session, token)
