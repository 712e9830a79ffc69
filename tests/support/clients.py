"""Real clients pointed at a running imstags."""

from __future__ import annotations

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkims.v2 import ImsClient

from imstags.domain.credentials import IssuedCredential


def ims_client(
    base_url: str, credential: IssuedCredential, project_id: str | None = None
) -> ImsClient:
    """The official SDK's client, as a user builds it, with only the endpoint changed."""
    config = HttpConfig.get_default_config()
    config.ignore_ssl_verification = True
    config.retry_times = 0
    return (
        ImsClient.new_builder()
        .with_credentials(
            BasicCredentials(
                credential.access, credential.secret, project_id or credential.project_id
            )
        )
        .with_endpoint(base_url)
        .with_http_config(config)
        .build()
    )
