"""Verification of the Huawei Cloud SDK's ``SDK-HMAC-SHA256`` request signatures.

The client signs a canonical form of the request (method, path, sorted query, the headers it
lists in ``SignedHeaders``, and the SHA-256 of the body) with HMAC-SHA256 under its secret
key. The server rebuilds the same canonical form from the request as received, recomputes the
signature with the stored secret and compares in constant time. ``X-Sdk-Date`` is part of the
signed data and must lie within a window around the server's clock, which bounds replays.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import quote, unquote

from imstags.errors import Unauthorized

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_DATE_LENGTH = len("20260101T000000Z")
# Access keys are letters and digits (imstags issues 20); anything else is not worth a lookup.
_ACCESS_KEY_RE = re.compile(r"^[A-Za-z0-9]{1,128}$")
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

_AUTH_RE = re.compile(
    r"^SDK-HMAC-SHA256\s+Access=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-fA-F]+)$"
)


@dataclass(frozen=True)
class SignedRequest:
    """What the verifier needs of an HTTP request, independent of any framework."""

    method: str
    raw_path: str  # as sent, still percent-encoded, without the query string
    raw_query: str  # as sent, without the leading "?"
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    # The body's hash as signed, for a body checked later as it streams (image data uploads).
    payload_hash: str | None = None


@dataclass(frozen=True)
class AuthorizationHeader:
    access: str
    signed_headers: tuple[str, ...]
    signature: str
    # The signed header names as ASGI gives names (lower-case bytes).
    signed_header_keys: tuple[bytes, ...] = ()


def is_sdk_signature(authorization: str | None) -> bool:
    return authorization is not None and authorization.startswith(ALGORITHM + " ")


@lru_cache(maxsize=1024)
def parse_authorization(value: str) -> AuthorizationHeader:
    match = _AUTH_RE.match(value.strip())
    if match is None:
        raise Unauthorized("The Authorization header is not a valid SDK-HMAC-SHA256 signature.")
    access, signed, signature = match.groups()
    names = tuple(signed.split(";"))
    keys = tuple(name.encode("latin-1") for name in names)
    return AuthorizationHeader(access, names, signature.lower(), keys)


def check_cheap_parts(
    headers: Mapping[str, str], header: AuthorizationHeader, *, window_seconds: int
) -> str:
    """What can be refused before any lookup: the access key's shape and the signed date's
    window (past or future). Returns the date. An unknown key costs a database read, so an
    invented one must fail here first whenever it can."""
    if _ACCESS_KEY_RE.match(header.access) is None:
        raise Unauthorized("The access key is unknown.")
    if "x-sdk-date" not in header.signed_headers:
        raise Unauthorized("X-Sdk-Date must be among the signed headers.")
    date_text = headers.get("x-sdk-date", "")
    check_sdk_date(date_text, window_seconds=window_seconds)
    return date_text


def _encode(text: str) -> str:
    return quote(text, safe="~")


# Caches below keep only short values, so that invented long ones cannot grow memory.
_CACHED_PATH_MAX = 512


def canonical_uri(raw_path: str) -> str:
    """Cached for paths of ordinary length: clients call the same few paths over and over."""
    if len(raw_path) <= _CACHED_PATH_MAX:
        return _cached_canonical_uri(raw_path)
    return _canonical_uri(raw_path)


def _canonical_uri(raw_path: str) -> str:
    path = "/".join(_encode(segment) for segment in unquote(raw_path).split("/"))
    return path if path.endswith("/") else path + "/"


_cached_canonical_uri = lru_cache(maxsize=4096)(_canonical_uri)


@lru_cache(maxsize=1024)
def parse_sdk_date(text: str) -> datetime | None:
    """``YYYYMMDDTHHMMSSZ`` as an aware datetime, or None (cached: clients repeat a second)."""
    try:
        return datetime.strptime(text, DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def canonical_query(raw_query: str) -> str:
    pairs: list[tuple[str, str]] = []
    for part in raw_query.split("&") if raw_query else []:
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote(key.replace("+", " ")), unquote(value.replace("+", " "))))
    pairs.sort()
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in pairs)


def payload_sha256(
    request: SignedRequest, signed_headers: Sequence[str], *, allow_unsigned_payload: bool = False
) -> str:
    """The payload hash that goes into the canonical request: always the hash of the bytes
    received, so that the signature binds the body.

    The SDK sends ``X-Sdk-Content-Sha256`` only as ``UNSIGNED-PAYLOAD`` (for bodies that are
    not JSON); other clients may send the body's real hash. The header is accepted when it
    equals the hash of what arrived, and never used in its place: trusting it would let a
    captured signature carry any body. ``UNSIGNED-PAYLOAD`` is refused unless the caller
    allows it (a hook for a streamed upload that hashes the data itself) and the header is
    among the signed ones, so that the signature still says "unsigned" was meant.
    """
    actual = hashlib.sha256(request.body).hexdigest() if request.body else EMPTY_BODY_SHA256
    claimed = request.headers.get("x-sdk-content-sha256")
    if claimed is None or not request.body:
        return actual
    claimed = claimed.strip()
    if claimed == UNSIGNED_PAYLOAD:
        if allow_unsigned_payload and "x-sdk-content-sha256" in signed_headers:
            return UNSIGNED_PAYLOAD
        raise Unauthorized("UNSIGNED-PAYLOAD is not accepted here: the body must be signed.")
    if not hmac.compare_digest(claimed.lower().encode(), actual.encode()):
        raise Unauthorized("X-Sdk-Content-Sha256 does not match the body received.")
    return claimed


def canonical_request(
    request: SignedRequest,
    signed_headers: Sequence[str],
    *,
    allow_unsigned_payload: bool = False,
) -> str:
    lines = []
    for name in signed_headers:
        value = request.headers.get(name)
        if value is None:
            raise Unauthorized(f"The signed header '{name}' is missing from the request.")
        lines.append(f"{name}:{value.strip()}")
    if request.payload_hash is not None:
        # A body hashed as it streams (image data uploads): the hash of the bytes received, or
        # the declared one those bytes are checked against before anything is kept.
        payload_hash = request.payload_hash
    else:
        payload_hash = payload_sha256(
            request, signed_headers, allow_unsigned_payload=allow_unsigned_payload
        )
    return "\n".join(
        [
            request.method.upper(),
            canonical_uri(request.raw_path),
            canonical_query(request.raw_query),
            "\n".join(lines) + "\n",
            ";".join(signed_headers),
            payload_hash,
        ]
    )


def string_to_sign(canonical: str, date: str) -> str:
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"{ALGORITHM}\n{date}\n{digest}"


def sign(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def check_date(
    request: SignedRequest,
    header: AuthorizationHeader,
    *,
    now: datetime | None = None,
    window_seconds: int = 900,
) -> str:
    """The signed ``X-Sdk-Date``, provided it lies within the window around ``now``."""
    if "x-sdk-date" not in header.signed_headers:
        raise Unauthorized("X-Sdk-Date must be among the signed headers.")
    date_text = request.headers.get("x-sdk-date", "")
    check_sdk_date(date_text, now=now, window_seconds=window_seconds)
    return date_text


def check_sdk_date(
    date_text: str, *, now: datetime | None = None, window_seconds: int = 900
) -> None:
    """``X-Sdk-Date`` must be well-formed and lie within the window around ``now``."""
    signed_at = _sdk_date_seconds(date_text) if len(date_text) == _DATE_LENGTH else None
    if signed_at is None:
        raise Unauthorized("X-Sdk-Date is missing or not in the form YYYYMMDDTHHMMSSZ.")
    current = now.timestamp() if now is not None else time.time()
    if abs(current - signed_at) > window_seconds:
        raise Unauthorized("The request date (X-Sdk-Date) is outside the allowed time window.")


@lru_cache(maxsize=1024)
def _sdk_date_seconds(text: str) -> float | None:
    signed_at = parse_sdk_date(text)
    return None if signed_at is None else signed_at.timestamp()


def verify(
    request: SignedRequest,
    lookup_secret: Callable[[str], tuple[str, str] | None],
    *,
    now: datetime | None = None,
    window_seconds: int = 900,
    allow_unsigned_payload: bool = False,
) -> str:
    """Check the request's signature; returns the project id its access key belongs to.

    ``lookup_secret(access)`` gives ``(project_id, secret)`` or None for an unknown key.
    Any failure raises :class:`Unauthorized` with a reason that reveals no secret.
    """
    header = parse_authorization(request.headers.get("authorization", ""))
    date_text = check_date(request, header, now=now, window_seconds=window_seconds)
    found = lookup_secret(header.access)
    if found is None:
        raise Unauthorized("The access key is unknown.")
    project_id, secret = found
    expected = sign(
        secret,
        string_to_sign(
            canonical_request(
                request, header.signed_headers, allow_unsigned_payload=allow_unsigned_payload
            ),
            date_text,
        ),
    )
    if not hmac.compare_digest(expected, header.signature):
        raise Unauthorized("The request signature does not match.")
    return project_id
