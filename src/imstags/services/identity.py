"""Identity use cases: Keystone password login (throttled), token re-issue, inspection and
revocation, and the check of ``X-Auth-Token`` that the authenticator runs on every request."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from imstags.domain import identity
from imstags.domain.throttle import LoginThrottle
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


T = TypeVar("T")


class PasswordChecks:
    """The executor for argon2 checks: a few threads of its own and a bounded queue.

    Password checks are slow on purpose (about 0.1 s of CPU each); on the shared thread pool
    a burst of failed logins would queue ahead of every other blocking call. Here at most
    ``threads + queue`` run or wait; one more is refused at once (429 with Retry-After) instead
    of piling up.
    """

    def __init__(self, threads: int, queue: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="imstags-login")
        self._slots = threading.BoundedSemaphore(threads + queue)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        if not self._slots.acquire(blocking=False):
            raise TooManyRequests(1, "Too many logins are being checked; try again shortly.")
        try:
            return await asyncio.wrap_future(self._pool.submit(fn, *args))
        finally:
            self._slots.release()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _refuse_if_waiting(wait: int) -> None:
    if wait:
        raise TooManyRequests(wait, f"Too many failed logins; try again in {wait} seconds.")


class IdentityService:
    def __init__(
        self,
        db: Database,
        writes: WriteRunner,
        throttle: LoginThrottle,
        checks: PasswordChecks,
        *,
        token_ttl_seconds: int,
    ) -> None:
        self._db = db
        self._writes = writes
        self._throttle = throttle
        self._checks = checks
        self._ttl = token_ttl_seconds

    async def login(self, auth: identity.PasswordAuth, client: str) -> IssuedToken:
        """Check a password and issue a token.

        Failed logins are throttled per (resolved user, client address) and per client
        address (429, checked before the password is: see :mod:`imstags.domain.throttle`).
        The user is read in a short read transaction, the password checked on
        :class:`PasswordChecks` with no transaction open, and a write is opened only to store
        the token of a password that matched: failed logins never hold the write lock.
        """
        _refuse_if_waiting(self._throttle.client_retry_after(client))
        candidate = await run_blocking(self._candidate, auth)
        _refuse_if_waiting(self._throttle.retry_after(candidate.throttle_user, client))
        try:
            if not await self._checks.run(identity.password_matches, candidate, auth.password):
                raise Unauthorized("The request you have made requires authentication.")
            token, info = await self._writes.run(
                self._db.write,
                lambda session: identity.store_login_token_tx(session, auth, candidate, self._ttl),
            )
        except Unauthorized:
            self._throttle.failed(candidate.throttle_user, client)
            raise
        self._throttle.succeeded(candidate.throttle_user, client)
        return IssuedToken(token, info)

    def _candidate(self, auth: identity.PasswordAuth) -> identity.LoginCandidate:
        with self._db.read() as session:
            return identity.find_login_candidate(session, auth)

    def close(self) -> None:
        self._checks.close()

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
