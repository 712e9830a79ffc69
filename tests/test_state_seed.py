"""Known state: seed, export and reset through the admin API and the CLI, on the suite's
database (SQLite, or PostgreSQL with IMSTAGS_TEST_DATABASE_URL)."""

from __future__ import annotations

import uuid

import httpx
import pytest
import yaml
from click.testing import CliRunner

from imstags.api.admin import require_admin
from imstags.api.app import create_app
from imstags.api.openapi import api_routes
from imstags.cli import main
from imstags.domain.credentials import IssuedCredential
from imstags.testing.emulator import AdminError, Emulator
from tests.support.aggregate import assert_aggregate_exact
from tests.support.http import assert_error, signed_request


def project_document(project_id: str, access: str, images: list[dict]) -> dict:
    return {
        "projects": [
            {
                "id": project_id,
                "name": "name-" + project_id[:12],
                "credentials": [
                    {"access": access, "secret": "sk-" + project_id, "description": "ci"}
                ],
                "users": [{"name": "user-" + project_id[:12], "password": "pw-" + project_id}],
                "images": images,
            }
        ]
    }


def core_body(base_url: str, project_id: str, access: str) -> bytes:
    credential = IssuedCredential(access, "sk-" + project_id, project_id)
    response = signed_request(base_url, credential, "GET", f"/v2/{project_id}/images/tags")
    assert response.status_code == 200, response.text
    return response.content


def new_access() -> str:
    return "AK" + uuid.uuid4().hex[:18].upper()


def test_seed_export_reset_seed_gives_the_same_core_body_byte_for_byte(imstags_server: Emulator):
    # given: a seeded project with images and tags
    project_id, access = uuid.uuid4().hex, new_access()
    images = [
        {"name": f"img-{n}", "tags": {"env": ["prod", "dev"][n % 2], f"k{n % 3}": str(n % 4)}}
        for n in range(30)
    ]
    imstags_server.seed(project_document(project_id, access, images))
    before = core_body(imstags_server.base_url, project_id, access)
    # when: exported, reset, and the export seeded again
    exported = imstags_server.export(project_id)
    assert imstags_server.reset(project_id) == [project_id]
    assert imstags_server.export(project_id) == {
        "projects": [{"id": project_id, "credentials": [], "users": [], "images": []}]
    }
    imstags_server.seed(exported)
    # then
    assert core_body(imstags_server.base_url, project_id, access) == before
    assert imstags_server.export(project_id) == exported


def test_seed_refused_in_its_last_part_writes_nothing(imstags_server: Emulator):
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    document = project_document(first, new_access(), [{"name": "ok", "tags": {"a": "b"}}])
    bad = project_document(second, new_access(), [{"name": "bad", "tags": {"k": "v" * 300}}])
    document["projects"] += bad["projects"]
    with pytest.raises(AdminError) as refused:
        imstags_server.seed(document)
    assert refused.value.status == 400
    assert imstags_server.export(first) == {
        "projects": [{"id": first, "credentials": [], "users": [], "images": []}]
    }


def test_seed_refuses_an_access_key_that_exists(imstags_server: Emulator):
    access = new_access()
    imstags_server.seed(project_document(uuid.uuid4().hex, access, []))
    with pytest.raises(AdminError) as refused:
        imstags_server.seed(project_document(uuid.uuid4().hex, access, []))
    assert refused.value.status == 400 and "IMG.0035" in refused.value.body


def test_reset_of_one_project_leaves_the_others(imstags_server: Emulator):
    kept, emptied = uuid.uuid4().hex, uuid.uuid4().hex
    imstags_server.seed(project_document(kept, new_access(), [{"tags": {"a": "1"}}]))
    imstags_server.seed(project_document(emptied, new_access(), [{"tags": {"a": "1"}}]))
    imstags_server.reset(emptied)
    assert len(imstags_server.export(kept)["projects"][0]["images"]) == 1
    assert imstags_server.export(emptied)["projects"][0]["images"] == []


def test_seed_command_loads_yaml_with_the_given_keys(settings, db, server, tmp_path):
    # given: a YAML document naming its access key and secret
    project_id, access = uuid.uuid4().hex, new_access()
    document = project_document(project_id, access, [{"name": "w", "tags": {"env": "prod"}}])
    path = tmp_path / "state.yaml"
    path.write_text(yaml.safe_dump(document))
    # when
    result = CliRunner().invoke(
        main,
        ["--database", settings.resolved_database_url, "--data-dir", str(settings.data_dir),
         "seed", str(path)],
        env={"IMSTAGS_SECRET_KEY": settings.secret_key},
    )  # fmt: skip
    # then: the key signs requests to the running server
    assert result.exit_code == 0, result.output
    assert core_body(server.base_url, project_id, access) == (
        b'{"tags":[{"key":"env","values":["prod"]}]}'
    )
    assert_aggregate_exact(db, project_id)


def test_seed_command_reports_a_refused_document(settings, tmp_path):
    path = tmp_path / "state.json"
    path.write_text('{"projects": [{"id": "p", "images": [{"colour": "red"}]}]}')
    result = CliRunner().invoke(
        main, ["--database", settings.resolved_database_url, "seed", str(path)],
        env={"IMSTAGS_SECRET_KEY": settings.secret_key},
    )  # fmt: skip
    assert result.exit_code == 1
    assert "unknown field(s): colour" in result.output


def test_admin_api_does_not_exist_without_a_token(server):
    # The suite's server has no admin token: the admin paths are unknown paths.
    assert_error(httpx.post(server.base_url + "/_imstags/reset"), 404)


def test_every_admin_route_requires_the_admin_token(settings):
    app = create_app(settings)
    admin_routes = [r for r in api_routes(app) if r.path_format.startswith("/_imstags/")]
    assert len(admin_routes) == 8
    for route in admin_routes:
        calls = [dependency.call for dependency in route.original_route.dependant.dependencies]
        assert require_admin in calls, route.path_format
        assert not route.original_route.include_in_schema


def test_admin_api_refuses_a_wrong_token(imstags_server: Emulator):
    response = httpx.post(
        imstags_server.base_url + "/_imstags/reset", headers={"X-Imstags-Admin-Token": "wrong"}
    )
    assert_error(response, 401, "IMG.0030")


def test_admin_api_refuses_requests_that_came_through_a_proxy(imstags_server: Emulator):
    response = httpx.get(
        imstags_server.base_url + "/_imstags/faults",
        headers={"X-Imstags-Admin-Token": imstags_server.admin_token, "X-Forwarded-For": "1.2.3.4"},
    )
    assert_error(response, 403, "IMG.0026")
