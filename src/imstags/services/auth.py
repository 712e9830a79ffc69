"""Who is calling: AK/SK signatures and Keystone tokens, both resolved to a project principal.

The HTTP layer (:mod:`imstags.api.security`) hands :class:`Authenticator` the plain facts of a
request (method, raw path and query, the header list, a way to read the body) and turns the
principal into FastAPI dependencies; the checks themselves, their caches and their threads
live here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from collections import OrderedDict
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

    Nothing an unauthenticated caller sends can grow memory: the ``Authorization`` header is
    capped (``max_authorization_bytes``), the key's shape and the date window are checked before
    any lookup, unknown keys are remembered in a small bounded set (``unknown_key_cache_size``),
    and the memo of verified requests holds fixed-size digests, never headers.
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
        max_authorization_bytes: int = 4096,
        memo_max_head_bytes: int = 8192,
        unknown_key_cache_size: int = 256,
        unsigned_payload_media_types: frozenset[str] = frozenset(),
    ) -> None:
        self._db = db
        self._box = box
        self._window = date_window_seconds
        self._cache_seconds = credential_cache_seconds
        self._max_authorization = max_authorization_bytes
        self._memo_max_head = memo_max_head_bytes
        self._unknown_size = unknown_key_cache_size
        self._unsigned_media = unsigned_payload_media_types
        # Known keys only: their number is that of the credentials issued.
        self._secrets: dict[str, tuple[float, tuple[str, str]]] = {}
        # Keys found unknown, with when to ask again; least recently added dropped first.
        self._unknown: OrderedDict[str, float] = OrderedDict()
        # Bodiless requests already verified, by a digest of their signed parts.
        self._verified: dict[bytes, _Verified] = {}
        self._validate_token = token_validator
        self._run_blocking = run_blocking

    def cache_sizes(self) -> dict[str, int]:
        """Entries in each cache (for tests and the memory benchmark)."""
        return {
            "secrets": len(self._secrets),
            "unknown_keys": len(self._unknown),
            "verified": len(self._verified),
        }

    def _cached_secret(self, access: str) -> tuple[str, str] | None | _Missing:
        now = time.monotonic()
        cached = self._secrets.get(access)
        if cached is not None and cached[0] > now:
            return cached[1]
        until = self._unknown.get(access)
        if until is not None and until > now:
            return None
        return MISSING

    def _lookup_secret(self, access: str) -> tuple[str, str] | None:
        found = self._cached_secret(access)
        if not isinstance(found, _Missing):
            return found
        with self._db.read() as session:
            found = find_secret(session, self._box, access)
        until = time.monotonic() + self._cache_seconds
        if found is None:
            self._unknown[access] = until
            self._unknown.move_to_end(access)
            while len(self._unknown) > self._unknown_size:
                self._unknown.popitem(last=False)
        else:
            if len(self._secrets) > 10_000:
                self._secrets.clear()
            self._secrets[access] = (until, found)
        return found

    async def authenticate(
        self,
        method: str,
        raw_path: bytes | str,
        raw_query: bytes,
        headers: HeaderList,
        body_source: BodySource,
        *,
        allow_unsigned_payload: bool = False,
    ) -> Principal:
        """The principal of a request, from its facts as received: ``raw_path`` the path's
        bytes as sent (or, from a server that keeps no raw form, the decoded path),
        ``raw_query`` without the ``?``. The body is read only for a signed request that
        declares one. ``allow_unsigned_payload`` is for a route that hashes its body itself
        (a streamed upload): a signed ``X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD`` is then
        accepted; no route sets it yet."""
        authorization = header_value(headers, b"authorization")
        if authorization is not None and signing.is_sdk_signature(authorization):
            return await self._authenticate_signature(
                method,
                raw_path,
                raw_query,
                headers,
                authorization,
                body_source,
                allow_unsigned_payload,
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
        authorization: str,
        body_source: BodySource,
        allow_unsigned_payload: bool,
    ) -> Principal:
        window = self._window
        if len(authorization) > self._max_authorization:
            raise Unauthorized(
                f"The Authorization header is longer than {self._max_authorization} bytes."
            )
        header = signing.parse_authorization(authorization)
        raw = dict(headers)  # names are lower-case already; a later duplicate wins
        if raw[b"authorization"] != authorization.encode("latin-1"):
            raise Unauthorized("The request carries more than one Authorization header.")
        # A request that declares no body (or an empty one) has none: skip reading the stream.
        has_body = raw.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in raw
        # A bodiless request whose signed parts are byte for byte those of one verified before
        # (a client repeating a call within the second its signature dates from) would yield
        # the same HMAC under the same secret: while that secret is still the cached one, only
        # the date window is checked again. Unsigned headers do not enter the key, and a large
        # head skips the memo, so that padding cannot fill it.
        memo_key = None
        if not has_body:
            memo_key = self._memo_key(method, raw_path, raw_query, raw, header)
        if memo_key is not None:
            memo = self._verified.get(memo_key)
            if memo is not None and self._cached_secret(memo.access) is memo.secret_entry:
                signing.check_sdk_date(memo.sdk_date, window_seconds=window)
                claimed = raw.get(b"x-project-id")
                if claimed is not None and claimed.decode("latin-1") != memo.principal.project_id:
                    raise Forbidden("X-Project-Id names another project than the credentials.")
                return memo.principal
        named = {k.decode("latin-1"): v.decode("latin-1") for k, v in raw.items()}
        # The cheap refusals first; only then may the key cost a lookup.
        sdk_date = signing.check_cheap_parts(named, header, window_seconds=window)
        # With the secret cached, checking the signature is a few microseconds of hashing:
        # done inline, without the cost of a thread hop. Only a cache miss (a database read
        # and a decryption) goes to the thread pool.
        found = self._cached_secret(header.access)
        if isinstance(found, _Missing):
            found = await self._run_blocking(self._lookup_secret, header.access)
        if found is None:
            raise Unauthorized("The access key is unknown.")
        known = found
        # The SDK's signer marks bodies that are not JSON (a JSON patch, image data) as
        # UNSIGNED-PAYLOAD; accepted only for the configured media types, and only when the
        # Content-Type is signed, so that a captured request cannot change its kind.
        media = named.get("content-type", "").split(";", 1)[0].strip().lower()
        if media in self._unsigned_media and "content-type" in header.signed_headers:
            allow_unsigned_payload = True
        body = await body_source.body() if has_body else b""
        signed = _signed_request(method, raw_path, raw_query, named, body)
        project_id = signing.verify(
            signed,
            lambda _access: known,
            window_seconds=window,
            allow_unsigned_payload=allow_unsigned_payload,
        )
        principal = self._principal(named, project_id)
        if memo_key is not None:
            if len(self._verified) >= VERIFIED_MEMO_SIZE:
                self._verified.clear()
            self._verified[memo_key] = _Verified(principal, header.access, known, sdk_date)
        return principal

    def _memo_key(
        self,
        method: str,
        raw_path: bytes | str,
        raw_query: bytes,
        raw: dict[bytes, bytes],
        header: signing.AuthorizationHeader,
    ) -> bytes | None:
        """A 16-byte digest of what the signature covers and of the Authorization header, or
        None for signed parts too large to be worth remembering. The parts are joined with
        newlines, which none of them can contain (HTTP forbids them in the request line and in
        header values), so different requests give different texts."""
        path = raw_path if isinstance(raw_path, bytes) else raw_path.encode("latin-1")
        parts = [method.encode("latin-1"), path, raw_query, raw.get(b"authorization", b"")]
        parts += [raw.get(name, b"") for name in header.signed_header_keys]
        text = b"\n".join(parts)
        if len(text) > self._memo_max_head:
            return None
        return hashlib.blake2b(text, digest_size=16).digest()

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
        signed = _signed_request(method, raw_path, raw_query, named, b"")
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


def _signed_request(
    method: str, raw_path: bytes | str, raw_query: bytes, named: dict[str, str], body: bytes
) -> signing.SignedRequest:
    """The request as the verifier reads it: the path as sent (still percent-encoded), without
    its query string."""
    path = raw_path.decode("latin-1").split("?", 1)[0] if isinstance(raw_path, bytes) else raw_path
    return signing.SignedRequest(
        method=method,
        raw_path=path,
        raw_query=raw_query.decode("latin-1"),
        headers=named,
        body=body,
    )
