"""What the OpenStack tools showed (issue 12, sections 2 and 3), each with the client that
showed it: the ``openstack`` and ``glance`` commands as subprocesses, openstacksdk and
glanceclient in process, and plain HTTP where no client sends the request."""

from __future__ import annotations

import json
from pathlib import Path

import glanceclient
import httpx
import pytest
from click.testing import CliRunner
from glanceclient.exc import HTTPBadRequest
from openstack.exceptions import BadRequestException, ForbiddenException

from imstags.cli import main
from tests.support.openstack import (
    OpenStackUser,
    connect,
    keystone_session,
    make_user,
    openstack_cli,
)


@pytest.fixture
def user(db, project_id) -> OpenStackUser:
    return make_user(db, project_id)


@pytest.fixture
def conn(server, user):
    connection = connect(server.base_url, user)
    yield connection
    connection.close()


def run_json(server, user: OpenStackUser, *args: str):
    result = openstack_cli(server.base_url, user, *args, "-f", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def token_client(server, user: OpenStackUser) -> httpx.Client:
    token = keystone_session(server.base_url, user).get_token()
    return httpx.Client(base_url=server.base_url, headers={"X-Auth-Token": token}, timeout=30)


# --- section 2: two values for one key ----------------------------------------------------


def test_image_set_tag_overwrites_the_value_of_a_full_image(server, user, conn):
    # The list the command sends holds env=prod and env=staging in a random order; before,
    # the last one won, and on a full image (10 tags) the new value was dropped every time.
    others = [f"t{i}=x" for i in range(9)]
    image = conn.image.create_image(name="full", tags=["env=prod", *others])

    result = openstack_cli(server.base_url, user, "image", "set", "--tag", "env=staging", image.id)

    assert result.returncode == 0, result.stderr
    shown = run_json(server, user, "image", "show", image.id)
    assert sorted(shown["tags"]) == sorted(["env=staging", *others])


@pytest.mark.parametrize("attempt", range(3))
def test_image_set_tag_overwrites_the_value_every_time(server, user, conn, attempt):
    image = conn.image.create_image(name=f"set-{attempt}", tags=["env=prod", "keep"])

    result = openstack_cli(server.base_url, user, "image", "set", "--tag", "env=staging", image.id)

    assert result.returncode == 0, result.stderr
    assert sorted(conn.image.get_image(image.id).tags) == ["env=staging", "keep"]


def test_image_create_with_two_values_for_one_key_is_refused_naming_it(server, user, conn):
    result = openstack_cli(
        server.base_url, user, "image", "create", "--tag", "env=prod", "--tag", "env=dev", "two"
    )

    assert result.returncode != 0
    assert "env" in result.stderr and "400" in result.stderr
    assert [image.name for image in conn.image.images()] == []


def test_patch_with_two_new_values_for_a_key_is_refused(conn):
    image = conn.image.create_image(name="p", tags=["role=web"])

    with pytest.raises(BadRequestException) as err:
        conn.image.update_image(image, tags=["role=db", "role=cache"])

    assert "role" in str(err.value)
    assert conn.image.get_image(image.id).tags == ["role=web"]


def test_the_same_tag_twice_in_a_list_is_one_tag(conn):
    image = conn.image.create_image(name="dup", tags=["a=1", "a=1", "b"])

    assert sorted(image.tags) == ["a=1", "b"]


@pytest.mark.parametrize("tag", ["k=", " k", "k =v", "k= v", "k=v "])
def test_a_tag_that_would_read_back_otherwise_is_refused_on_every_path(server, user, conn, tag):
    with pytest.raises(BadRequestException):
        conn.image.create_image(name="rb", tags=[tag])
    image = conn.image.create_image(name="rb")
    with pytest.raises(BadRequestException):
        conn.image.update_image(image, tags=[tag])
    with token_client(server, user) as http:
        put = http.put(f"/v2/images/{image.id}/tags/{tag}")
    assert put.status_code == 400
    assert conn.image.get_image(image.id).tags == []


# --- section 3: one character rule for native tags ------------------------------------------


def test_tags_with_spaces_and_colons_are_accepted_on_post_patch_and_put(server, user, conn):
    created = run_json(server, user, "image", "create", "--tag", "os:ubuntu", "chars")
    result = openstack_cli(
        server.base_url, user, "image", "set", "--tag", "with space", "--tag", "ubuntu:22.04",
        created["id"],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    glance = glanceclient.Client("2", session=keystone_session(server.base_url, user))

    glance.image_tags.update(created["id"], "v=22.04 LTS")

    assert sorted(conn.image.get_image(created["id"]).tags) == [
        "os:ubuntu", "ubuntu:22.04", "v=22.04 LTS", "with space",
    ]  # fmt: skip


# --- section 3: the image schema and glanceclient ---------------------------------------------


def test_glance_image_update_adds_a_property_the_image_lacks(server, user, conn):
    image = conn.image.create_image(name="before")

    result = openstack_cli(
        server.base_url, user, "image-update", "--property", "hw_firmware_type=uefi",
        "--name", "after", image.id, program="glance",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    shown = conn.image.get_image(image.id)
    assert (shown.name, shown.properties["hw_firmware_type"]) == ("after", "uefi")


def test_image_schema_marks_optional_properties_not_base(server, user):
    with token_client(server, user) as http:
        properties = http.get("/v2/schemas/image").json()["properties"]

    for name in ("hw_firmware_type", "__description", "__os_bit", "__os_version"):
        assert properties[name]["is_base"] is False
    assert "is_base" not in properties["name"]
    assert properties["os_hidden"]["type"] == "boolean"


# --- section 3: Glance semantics --------------------------------------------------------------


def test_os_glance_properties_are_reserved_on_create_and_patch(server, user, conn):
    with token_client(server, user) as http:
        created = http.post("/v2/images", json={"name": "r", "os_glance_importing_to_stores": "x"})
        image = conn.image.create_image(name="r")
        patches = [
            [{"op": op, "path": "/os_glance_failed_import", "value": "x"}]
            for op in ("add", "replace")
        ] + [[{"op": "remove", "path": "/os_glance_failed_import"}]]
        patched = [
            http.patch(
                f"/v2/images/{image.id}",
                json=patch,
                headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
            )
            for patch in patches
        ]

    assert created.status_code == 403
    assert [response.status_code for response in patched] == [403, 403, 403]
    assert [found.name for found in conn.image.images()] == ["r"]


def test_os_hidden_is_a_boolean_and_hides_images_from_lists(server, user, conn):
    glance = glanceclient.Client("2", session=keystone_session(server.base_url, user))
    hidden = glance.images.create(name="hidden", os_hidden=True)  # checked against the schema
    shown = conn.image.create_image(name="shown")
    result = openstack_cli(server.base_url, user, "image", "set", "--hidden", shown.id)
    assert result.returncode == 0, result.stderr
    visible = conn.image.create_image(name="visible")

    listed = run_json(server, user, "image", "list")
    listed_hidden = run_json(server, user, "image", "list", "--hidden")

    assert [row["Name"] for row in listed] == ["visible"]
    assert sorted(row["Name"] for row in listed_hidden) == ["hidden", "shown"]
    assert conn.image.get_image(hidden["id"]).is_hidden is True
    assert conn.image.get_image(visible.id).is_hidden is False
    with pytest.raises(BadRequestException):
        conn.image.create_image(name="s", is_hidden=True)  # the SDK sends "True", a string


def test_list_at_trailing_slash_and_delete_with_an_empty_id(server, user, conn):
    image = conn.image.create_image(name="slash")
    with token_client(server, user) as http:
        listed = http.get("/v2/images/")
        deleted = http.delete("/v2/images/")

    assert listed.status_code == 200
    assert [found["id"] for found in listed.json()["images"]] == [image.id]
    assert deleted.status_code == 405
    assert deleted.json()["error"]["code"] == "IMG.0105"


def test_protected_image_delete_keeps_the_reference_answer(conn):
    image = conn.image.create_image(name="p", is_protected=True)

    with pytest.raises(BadRequestException) as err:
        conn.image.delete_image(image)

    assert "IMG.0028" in str(err.value.response.text)
    with pytest.raises(ForbiddenException):
        conn.image.update_image(image, os_glance_x="y")


# --- section 3: the imstags command's global options --------------------------------------------


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_options_are_accepted_before_or_after_the_subcommand(
    tmp_path: Path, monkeypatch, where
):
    monkeypatch.delenv("IMSTAGS_DATABASE_URL", raising=False)  # the data dir's SQLite file
    data_dir = tmp_path / "data"
    options = ["--data-dir", str(data_dir)]
    args = [*options, "db", "upgrade"] if where == "before" else ["db", "upgrade", *options]

    result = CliRunner().invoke(main, args)

    assert result.exit_code == 0, result.output
    assert any(data_dir.iterdir())


def test_glanceclient_update_refused_tag_pair_names_the_key(server, user, conn):
    image = conn.image.create_image(name="g", tags=["env=prod"])
    glance = glanceclient.Client("2", session=keystone_session(server.base_url, user))

    with pytest.raises(HTTPBadRequest) as err:
        glance.images.update(image.id, tags=["env=a", "env=b"])

    assert "env" in str(err.value)
