"""The ``openstack`` command (python-openstackclient) against the real server, as a subprocess.

It authenticates with a password against ``/v3`` from ``OS_*`` variables, exactly as a user's
shell would, and reaches the image API through the token's catalog.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from imstags.cli import main
from tests.support.openstack import OpenStackUser, connect, make_user, openstack_cli


@pytest.fixture
def user(db, project_id) -> OpenStackUser:
    return make_user(db, project_id)


def run_json(server, user: OpenStackUser, *args: str):
    result = openstack_cli(server.base_url, user, *args, "-f", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_image_list_tag_filters_images(server, user):
    conn = connect(server.base_url, user)
    tagged = conn.image.create_image(name="tagged", tags=["env=prod"])
    conn.image.create_image(name="other", tags=["env=dev"])
    conn.close()

    listed = run_json(server, user, "image", "list", "--tag", "env=prod")

    assert [row["ID"] for row in listed] == [tagged.id]
    assert listed[0]["Name"] == "tagged"


def test_image_set_tag_adds_tags_seen_by_list_and_show(server, user):
    conn = connect(server.base_url, user)
    image = conn.image.create_image(name="settable", tags=["keep=1"])
    conn.close()

    result = openstack_cli(
        server.base_url, user, "image", "set", "--tag", "team=core", "--tag", "golden", image.id
    )
    assert result.returncode == 0, result.stderr

    shown = run_json(server, user, "image", "show", image.id)
    assert sorted(shown["tags"]) == ["golden", "keep=1", "team=core"]
    listed = run_json(server, user, "image", "list", "--tag", "team=core", "--tag", "golden")
    assert [row["ID"] for row in listed] == [image.id]


def test_image_create_from_a_non_interactive_shell_makes_a_queued_image(server, user):
    # With stdin not a terminal, the command uploads whatever stdin holds: here nothing.
    created = run_json(server, user, "image", "create", "--tag", "made=cli", "from-cli")

    assert (created["status"], created["tags"]) == ("queued", ["made=cli"])
    listed = run_json(server, user, "image", "list", "--tag", "made=cli")
    assert [row["Name"] for row in listed] == ["from-cli"]


def test_image_list_with_a_wrong_password_fails(server, user):
    wrong = OpenStackUser(user.name, "not-the-password", user.project_id)

    result = openstack_cli(server.base_url, wrong, "image", "list")

    assert result.returncode != 0
    assert "401" in result.stderr or "authenticat" in result.stderr.lower()


def test_users_create_cli_makes_a_user_who_can_list_images(server, settings, project_id):
    runner = CliRunner()
    created = runner.invoke(
        main,
        [
            "--database", settings.resolved_database_url, "--data-dir", str(settings.data_dir),
            "users", "create", "--name", f"cli-{project_id}", "--password", "s3cret!",
            "--project-id", project_id,
        ],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert json.loads(created.output)["project_id"] == project_id

    user = OpenStackUser(f"cli-{project_id}", "s3cret!", project_id)
    assert run_json(server, user, "image", "list") == []
