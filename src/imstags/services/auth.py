"""Who is calling: AK/SK signatures and Keystone tokens, both resolved to a project principal.

The HTTP layer (:mod:`imstags.api.security`) hands :class:`Authenticator` the plain facts of a
request (method, raw path and query, the header list, a way to read the body) and turns the
principal into FastAPI dependencies; the checks themselves, their caches and their threads
live here.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from imstags.domain import signing
from imstags.domain.credentials import find_secret
from imstags.domain.secrets import SecretBox
from imstags.errors import Forbidden, Unauthorized
from imstags.services.threads import run_blocking
from imstags.storage.database import Database

HeaderList = Sequence[tuple[bytes, bytes]]
"""Header names and values as received: names in lower case, values undecoded."""


class BodySource(Protocol):
    """Where a request's body comes from (the web framework's request object will do)."""

    async def body(self) -> bytes: ...


BlockingRunner = Callable[..., Awaitable[Any]]
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
VERIFIED_MEMO_SIZE = 4096


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first value of a header (``name`` in lower case, as ASGI gives names)."""
    for key, value in headers:
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


@dataclass(frozen=True)
class Principal:
    project_id: str
    method: str  # "aksk" or "token"
    user_id: str | None = None


TokenValidator = Callable[[str], Principal]


@dataclass(frozen=True)
class _Verified:
    """A verified request: whom it authenticated, and with which cached secret entry."""

    principal: Principal
    access: str
    secret_entry: tuple[str, str]
    sdk_date: str


class _Missing:
    """Marks "not in the cache", as opposed to a cached "no such access key" (None)."""


MISSING = _Missing()


class _NoBody:
    async def body(self) -> bytes:
        return b""


_NO_BODY = _NoBody()
BodyCheck = Callable[[str], None]
"""Called with the SHA-256 (hex) of a streamed body; raises :class:`Unauthorized` if the
request's signature does not cover that body."""


def _expect_hash(expected: str) -> BodyCheck:
    def check(payload_hash: str) -> None:
        if payload_hash != expected:
            raise Unauthorized("The uploaded data does not match the signed body hash.")

    return check


class Authenticator:
    """Checks credentials; caches decrypted AK/SK secrets for a few seconds.

    The cache spares a database read and a decryption on every request; its lifetime
    (``credential_cache_seconds``) bounds how long a credential deleted through another
    process keeps working. Tokens are checked by ``token_validator`` (the identity service's),
    on the shared thread pool (``run_blocking``).
    """

    def __init__(
        self,
        db: Database,
        box: SecretBox,
        *,
        date_window_seconds: int,
        credential_cache_seconds: float,
        token_validator: TokenValidator,
        run_blocking: BlockingRunner = run_blocking,
    ) -> None:
        self._db = db
        self._box = box
        self._window = date_window_seconds
        self._cache_seconds = credential_cache_seconds
        self._secrets: dict[str, tuple[float, tuple[str, str] | None]] = {}
        # Bodiless requests already verified, by their raw request line and headers.
        self._verified: dict[tuple[object, ...], _Verified] = {}
        self._validate_token = token_validator
        self._run_blocking = run_blocking

    def _cached_secret(self, access: str) -> tuple[str, str] | None | _Missing:
        cached = self._secrets.get(access)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        return MISSING

    def _lookup_secret(self, access: str) -> tuple[str, str] | None:
        now = time.monotonic()
        cached = self._secrets.get(access)
        if cached is not None and cached[0] > now:
            return cached[1]
        with self._db.read() as session:
            found = find_secret(session, self._box, access)
        if len(self._secrets) > 10_000:
            self._secrets.clear()
        self._secrets[access] = (now + self._cache_seconds, found)
        return found

    async def authenticate(
        self,
        method: str,
        raw_path: bytes | str,
        raw_query: bytes,
        headers: HeaderList,
        body_source: BodySource,
    ) -> Principal:
        """The principal of a request, from its facts as received: ``raw_path`` the path's
        bytes as sent (or, from a server that keeps no raw form, the decoded path),
        ``raw_query`` without the ``?``. The body is read only for a signed request that
        declares one. Nothing is decoded before the memo of verified requests is asked."""
        authorization = header_value(headers, b"authorization")
        if signing.is_sdk_signature(authorization):
            return await self._authenticate_signature(
                method, raw_path, raw_query, headers, body_source
            )
        token = header_value(headers, b"x-auth-token")
        if token:
            principal: Principal = await self._run_blocking(self._validate_token, token)
            return principal
        raise Unauthorized("The request carries no valid credentials.")

    async def _authenticate_signature(
        self,
        method: str,
        raw_path: bytes | str,
        raw_query: bytes,
        headers: HeaderList,
        body_source: BodySource,
    ) -> Principal:
        window = self._window
        # A bodiless request byte for byte the same as one verified before (a client repeating
        # a call within the second its signature dates from) would yield the same HMAC under
        # the same secret: while that secret is still the cached one, only the date window is
        # checked again. Keyed on the raw request line and headers, so any difference misses.
        memo_key = (method, raw_path, raw_query, tuple(headers))
        memo = self._verified.get(memo_key)
        if memo is not None and self._cached_secret(memo.access) is memo.secret_entry:
            signing.check_sdk_date(memo.sdk_date, window_seconds=window)
            return memo.principal  # X-Project-Id was checked: it is among the same bytes
        # Header names are lower-case already; the signature needs about ten lookups.
        named = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers}
        # A request that declares no body (or an empty one) has none: skip reading the stream.
        has_body = named.get("content-length", "0") != "0" or "transfer-encoding" in named
        body = await body_source.body() if has_body else b""
        signed = signing.SignedRequest(
            method=method,
            raw_path=(
                raw_path.decode("latin-1").split("?", 1)[0]
                if isinstance(raw_path, bytes)
                else raw_path
            ),
            raw_query=raw_query.decode("latin-1"),
            headers=named,
            body=body,
        )
        # With the secret cached, checking the signature is a few microseconds of hashing:
        # done inline, without the cost of a thread hop. Only a cache miss (a database read
        # and a decryption) goes to the thread pool.
        header = signing.parse_authorization(named.get("authorization", ""))
        found = self._cached_secret(header.access)
        if isinstance(found, _Missing):
            found = await self._run_blocking(self._lookup_secret, header.access)
        known = found
        project_id = signing.verify(signed, lambda _access: known, window_seconds=window)
        principal = self._principal(named, project_id)
        if not has_body and known is not None:
            if len(self._verified) >= VERIFIED_MEMO_SIZE:
                self._verified.clear()
            self._verified[memo_key] = _Verified(
                principal, header.access, known, named.get("x-sdk-date", "")
            )
        return principal

    async def authenticate_streamed_body(
        self, method: str, raw_path: bytes | str, raw_query: bytes, headers: HeaderList
    ) -> tuple[Principal, BodyCheck | None]:
        """The principal of a request whose body is too large to read before answering (an
        image data upload), and for an AK/SK signature the check its body must pass: the
        caller hashes the body (SHA-256) as it streams and calls the check with that hash
        before it keeps anything.

        The signature's date and key are checked now. A declared hex ``X-Sdk-Content-Sha256``
        is what the signature covers, so the signature is verified now and the body must
        hash to it; without one, the signature covers the body's own hash, and is verified
        when that is known. ``UNSIGNED-PAYLOAD`` (which the SDK's signer sends for any
        non-JSON body) is refused for a non-empty body: the signature would not bind the
        data, and anyone holding a captured request could replace it. A token binds no body
        and gives no check.
        """
        authorization = header_value(headers, b"authorization")
        if not signing.is_sdk_signature(authorization):
            return await self.authenticate(method, raw_path, raw_query, headers, _NO_BODY), None
        named = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers}
        declared = named.get("x-sdk-content-sha256")
        empty = named.get("content-length") == "0"
        if declared is not None and not empty and not _SHA256_HEX.fullmatch(declared.lower()):
            raise Unauthorized(
                "An AK/SK-signed upload must sign its data: UNSIGNED-PAYLOAD is refused "
                "(sign the body's SHA-256, or use a token)."
            )
        signed = signing.SignedRequest(
            method=method,
            raw_path=(
                raw_path.decode("latin-1").split("?", 1)[0]
                if isinstance(raw_path, bytes)
                else raw_path
            ),
            raw_query=raw_query.decode("latin-1"),
            headers=named,
            body=b"",
        )
        header = signing.parse_authorization(named.get("authorization", ""))
        signing.check_date(signed, header, window_seconds=self._window)
        found = self._cached_secret(header.access)
        if isinstance(found, _Missing):
            found = await self._run_blocking(self._lookup_secret, header.access)
        if found is None:
            raise Unauthorized("The access key is unknown.")
        known = found
        project_id = known[0]
        principal = self._principal(named, project_id)

        def verify_with(payload_hash: str) -> None:
            with_hash = dataclasses.replace(
                signed,
                payload_hash=signing.EMPTY_BODY_SHA256 if empty else payload_hash,
            )
            signing.verify(with_hash, lambda _access: known, window_seconds=self._window)

        if declared is not None and not empty:
            verify_with(declared.lower())
            return principal, _expect_hash(declared.lower())
        return principal, verify_with

    @staticmethod
    def _principal(headers: dict[str, str], project_id: str) -> Principal:
        claimed = headers.get("x-project-id")
        if claimed is not None and claimed != project_id:
            raise Forbidden("X-Project-Id names another project than the credentials.")
        return Principal(project_id=project_id, method="aksk")
