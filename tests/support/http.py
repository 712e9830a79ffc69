"""Hand-made HTTP requests against the real server, signed by the SDK's own signer."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from imstags.domain.credentials import IssuedCredential
from tests.support.signing import sdk_signed_headers


def encode_query(query: list[tuple[str, Any]]) -> str:
    return "&".join(f"{quote(str(k), safe='~')}={quote(str(v), safe='~')}" for k, v in query)


def signed_request(
    base_url: str,
    credential: IssuedCredential,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    query: list[tuple[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> httpx.Response:
    """Sign ``method path?query`` with ``body`` as the SDK would, and send it as is."""
    url = base_url + path
    signed = sdk_signed_headers(
        method, url, credential.access, credential.secret, body=body, query=query, headers=headers
    )
    full = url + ("?" + encode_query(query) if query else "")
    return httpx.request(method, full, content=body, headers=signed, timeout=timeout)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> str:
    """The response is ``status`` with exactly the error body; returns its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return str(body["error"]["message"])
