"""Requests signed by the SDK's own signer, to be sent (or tampered with) by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer


def sdk_signed_headers(
    method: str,
    url: str,
    access: str,
    secret: str,
    *,
    body: bytes = b"",
    query: list[tuple[str, object]] | None = None,
    headers: dict[str, str] | None = None,
    date: datetime | None = None,
) -> dict[str, str]:
    """Headers (Authorization, X-Sdk-Date, Host, ...) the SDK's signer puts on this request."""
    parts = urlsplit(url)
    header_params = {"Content-Type": "application/json", **(headers or {})}
    if date is not None:
        header_params["X-Sdk-Date"] = date.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    request = SdkRequest(
        method=method,
        schema=parts.scheme,
        host=parts.netloc,
        resource_path=parts.path,
        query_params=list(query or []),
        header_params=header_params,
        body=body,
    )
    signed = Signer(BasicCredentials(access, secret)).sign(request)
    return {k: str(v) for k, v in signed.header_params.items()}
