"""/healthz and /readyz on the real server (their failure modes are in test_database_faults)."""

from __future__ import annotations

import asyncio

import httpx
from cryptography.fernet import Fernet

from imstags.api.app import create_app
from imstags.settings import Settings
from tests.support.http import assert_error


def test_healthz_returns_ok_without_credentials(server):
    response = httpx.get(server.base_url + "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_returns_ready_when_database_is_reachable_and_migrated(server):
    response = httpx.get(server.base_url + "/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok", "migrations": "current"}


def test_readyz_returns_503_when_schema_is_not_at_newest_migration(tmp_path):
    """A database that is reachable but was never migrated is not ready (in-process app:
    ``imstags serve`` always migrates first, so a real server never starts in this state)."""
    settings = Settings(data_dir=tmp_path, secret_key=Fernet.generate_key().decode())
    app = create_app(settings)

    async def probe() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/readyz")

    response = asyncio.run(probe())
    message = assert_error(response, 503, "IMG.0061")
    assert "migration" in message
