"""Client libraries pointed at the emulator, imported only when a test asks for one."""

from __future__ import annotations

from typing import Any


def ims_client(
    base_url: str,
    access_key: str,
    secret_key: str,
    project_id: str,
    *,
    retry_times: int = 0,
    timeout: float | tuple[float, float] = 30.0,
) -> Any:
    """huaweicloudsdkims's client as a user builds it, with only the endpoint changed."""
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.http.http_config import HttpConfig
    from huaweicloudsdkims.v2 import ImsClient

    config = HttpConfig.get_default_config()
    config.retry_times = retry_times
    config.timeout = timeout
    credentials = BasicCredentials(access_key, secret_key, project_id)
    return (
        ImsClient.new_builder()
        .with_credentials(credentials)
        .with_endpoint(base_url)
        .with_http_config(config)
        .build()
    )


def openstack_connection(
    base_url: str, user_name: str, password: str, project_id: str, region: str, **options: Any
) -> Any:
    """openstacksdk with password auth against the emulator's Keystone ``/v3``."""
    import openstack

    settings: dict[str, Any] = {
        "auth_url": base_url + "/v3",
        "username": user_name,
        "password": password,
        "project_id": project_id,
        "user_domain_name": "Default",
        "region_name": region,
        "identity_api_version": "3",
        "image_api_version": "2",
    }
    settings.update(options)
    return openstack.connect(**settings)
