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
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()

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


def is_sdk_signature(authorization: str | None) -> bool:
    return bool(authorization) and authorization.startswith(ALGORITHM + " ")  # type: ignore[union-attr]


@lru_cache(maxsize=1024)
def parse_authorization(value: str) -> AuthorizationHeader:
    match = _AUTH_RE.match(value.strip())
    if match is None:
        raise Unauthorized("The Authorization header is not a valid SDK-HMAC-SHA256 signature.")
    access, signed, signature = match.groups()
    return AuthorizationHeader(access, tuple(signed.split(";")), signature.lower())


def _encode(text: str) -> str:
    return quote(text, safe="~")


@lru_cache(maxsize=4096)
def canonical_uri(raw_path: str) -> str:
    """Cached: a pure function of the path, and clients call the same few paths over and over."""
    path = "/".join(_encode(segment) for segment in unquote(raw_path).split("/"))
    return path if path.endswith("/") else path + "/"


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


def canonical_request(request: SignedRequest, signed_headers: Sequence[str]) -> str:
    lines = []
    for name in signed_headers:
        value = request.headers.get(name)
        if value is None:
            raise Unauthorized(f"The signed header '{name}' is missing from the request.")
        lines.append(f"{name}:{value.strip()}")
    if request.payload_hash is not None:
        payload_hash = request.payload_hash
    elif not request.body:
        payload_hash = EMPTY_BODY_SHA256
    else:
        payload_hash = (
            request.headers.get("x-sdk-content-sha256") or hashlib.sha256(request.body).hexdigest()
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
    signed_at = _sdk_date_seconds(date_text)
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
        secret, string_to_sign(canonical_request(request, header.signed_headers), date_text)
    )
    if not hmac.compare_digest(expected, header.signature):
        raise Unauthorized("The request signature does not match.")
    return project_id
