"""Fixtures shared by the whole suite.

The suite runs on SQLite by default. With ``IMSTAGS_TEST_DATABASE_URL`` set to a PostgreSQL
server URL it runs the same tests on a fresh database created on that server for this session
(and dropped afterwards). Tests isolate from each other by using fresh project ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from huaweicloudsdkims.v2 import ImsClient

from imstags.domain.credentials import IssuedCredential, create_credential_tx
from imstags.domain.secrets import SecretBox
from imstags.settings import Settings
from imstags.storage.database import Database
from imstags.storage.migrate import upgrade
from tests.support.clients import ims_client
from tests.support.databases import empty_test_database
from tests.support.server import RunningServer, start_server
from tests.support.tagging import create_image


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with empty_test_database(tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("data"),
        secret_key=Fernet.generate_key().decode(),
    )


@pytest.fixture(scope="session")
def imstags_database_url(database_url: str) -> str | None:
    """The pytest plugin's server (imstags.testing) on the suite's PostgreSQL database, or on
    a temporary SQLite file of its own, as users get it by default."""
    return database_url if database_url.startswith("postgresql") else None


@pytest.fixture(scope="session")
def db(settings: Settings) -> Iterator[Database]:
    upgrade(settings.resolved_database_url)
    database = Database(settings.resolved_database_url)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def server(
    settings: Settings, db: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """The real service in its own process on a free loopback port."""
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    with start_server(settings, log_path) as running:
        yield running


@pytest.fixture
def project_id() -> str:
    return new_project_id()


def new_project_id() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def make_credential(db: Database, settings: Settings) -> Callable[[str], IssuedCredential]:
    box = SecretBox(settings.secret_key or "")

    def make(project: str) -> IssuedCredential:
        return db.write(lambda s: create_credential_tx(s, box, project))

    return make


@pytest.fixture
def credential(
    make_credential: Callable[[str], IssuedCredential], project_id: str
) -> IssuedCredential:
    return make_credential(project_id)


@pytest.fixture
def ims(server: RunningServer, credential: IssuedCredential) -> ImsClient:
    """The official SDK's client for the test's own project, against the real server."""
    return ims_client(server.base_url, credential)


@pytest.fixture
def image(ims: ImsClient) -> str:
    """A fresh image of the test's project, created through the SDK."""
    return create_image(ims)


@pytest.fixture
def data_dir(settings: Settings) -> Path:
    return settings.data_dir
