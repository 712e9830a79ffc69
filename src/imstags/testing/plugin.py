"""The pytest plugin: imstags fixtures for any test suite (``pip install imstags`` registers it).

Fixtures:

- ``imstags_server`` (session): an :class:`~imstags.testing.Emulator` on a free loopback port,
  with a temporary SQLite database, or the database of ``--imstags-database URL`` /
  ``IMSTAGS_PYTEST_DATABASE_URL``. Override the ``imstags_database_url`` fixture to choose it
  in code.
- ``imstags_project``: a fresh project with its AK/SK and Keystone user, emptied when the
  test ends. Mark a test
  ``@pytest.mark.imstags_seed(images=[{"name": "web", "tags": {"env": "prod"}}])`` to give the
  project images.
- ``imstags_ims``: a ready ``huaweicloudsdkims`` ``ImsClient`` for that project.
- ``imstags_openstack``: a ready openstacksdk ``Connection`` as the project's user.
- ``imstags_faults``: the server's fault rules, all removed when the test ends.

The client libraries are imported only by the fixtures that return a client.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from imstags.testing.emulator import Emulator, FaultRules, TestProject, server

DATABASE_ENVIRONMENT = "IMSTAGS_PYTEST_DATABASE_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("imstags", "imstags emulator")
    group.addoption(
        "--imstags-database",
        default=None,
        metavar="URL",
        help=f"SQLAlchemy URL of the database the imstags fixture serves (else "
        f"${DATABASE_ENVIRONMENT}, else a temporary SQLite file).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "imstags_seed(images=[...], name=None): images (and a project name) that the "
        "imstags_project fixture gives the test's project",
    )


@pytest.fixture(scope="session")
def imstags_database_url(pytestconfig: pytest.Config) -> str | None:
    url: str | None = pytestconfig.getoption("--imstags-database") or os.environ.get(
        DATABASE_ENVIRONMENT
    )
    return url


@pytest.fixture(scope="session")
def imstags_server(imstags_database_url: str | None) -> Iterator[Emulator]:
    with server(imstags_database_url) as emulator:
        yield emulator


@pytest.fixture
def imstags_project(
    imstags_server: Emulator, request: pytest.FixtureRequest
) -> Iterator[TestProject]:
    """Reset when the test ends, so that tests may seed fixed image ids and a long-lived
    database does not grow."""
    marker = request.node.get_closest_marker("imstags_seed")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    project = imstags_server.new_project(images=options.get("images", ()), name=options.get("name"))
    yield project
    imstags_server.reset(project.project_id)


@pytest.fixture
def imstags_ims(imstags_project: TestProject) -> Any:
    return imstags_project.ims_client()


@pytest.fixture
def imstags_openstack(imstags_project: TestProject) -> Iterator[Any]:
    connection = imstags_project.openstack()
    yield connection
    connection.close()


@pytest.fixture
def imstags_faults(imstags_server: Emulator) -> Iterator[FaultRules]:
    yield imstags_server.faults
    imstags_server.faults.clear()
