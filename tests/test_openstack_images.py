"""The native OpenStack image API driven by openstacksdk, as its users write it.

Password auth against ``/v3`` (keystoneauth discovers the identity version there), the image
endpoint from the token's catalog (openstacksdk discovers ``/v2/`` at the root), then the
``conn.image`` calls, all over real HTTP against the real server.
"""

from __future__ import annotations

import uuid

import pytest
from huaweicloudsdkims.v2 import ListImagesTagsRequest
from openstack import exceptions as os_exceptions
from sqlalchemy import insert

from imstags.domain.images.records import create_image_tx, utcnow
from imstags.storage.models import Image
from tests.support.clients import ims_client
from tests.support.openstack import connect, make_user


@pytest.fixture
def conn(server, db, project_id):
    connection = connect(server.base_url, make_user(db, project_id))
    yield connection
    connection.close()


def core_tags(server, credential) -> dict[str, list[str]]:
    response = ims_client(server.base_url, credential).list_images_tags(ListImagesTagsRequest())
    return {tag.key: tag.values for tag in response.tags}


def test_create_image_returns_queued_image_with_tags_and_properties(conn):
    image = conn.image.create_image(name="web", tags=["env=prod", "golden"], os_distro="ubuntu")

    assert image.status == "queued"
    assert image.name == "web"
    assert sorted(image.tags) == ["env=prod", "golden"]
    assert image.os_distro == "ubuntu"
    # openstacksdk's own bookkeeping properties are kept, like any additional property.
    assert "owner_specified.openstack.object" in image.properties
    assert conn.image.get_image(image.id).properties["__imagetype"] == "private"


def test_images_filter_by_tag_returns_only_the_tagged_images(conn):
    prod = conn.image.create_image(name="a", tags=["env=prod"])
    conn.image.create_image(name="b", tags=["env=dev"])
    golden = conn.image.create_image(name="c", tags=["golden", "env=prod"])

    by_pair = {image.id for image in conn.image.images(tag="env=prod")}
    by_key_only = {image.id for image in conn.image.images(tag="golden")}
    both = {image.id for image in conn.image.images(tag=["env=prod", "golden"])}

    assert by_pair == {prod.id, golden.id}
    assert by_key_only == {golden.id}
    assert both == {golden.id}
    assert list(conn.image.images(tag="env=none")) == []


def test_add_tag_and_remove_tag_change_the_image_and_the_core_endpoint(conn, server, credential):
    image = conn.image.create_image(name="t")

    conn.image.add_tag(image, "team=storage")
    assert conn.image.get_image(image.id).tags == ["team=storage"]
    assert core_tags(server, credential) == {"team": ["storage"]}

    conn.image.remove_tag(conn.image.get_image(image.id), "team=storage")
    assert conn.image.get_image(image.id).tags == []
    assert core_tags(server, credential) == {}


def test_update_image_changes_name_properties_and_tags(conn, server, credential):
    image = conn.image.get_image(conn.image.create_image(name="before", tags=["a=1"]).id)

    updated = conn.image.update_image(
        image,
        name="after",
        properties={**image.properties, "hw_firmware_type": "uefi"},
        tags=["b=2", "c"],
    )

    assert updated.name == "after"
    assert sorted(updated.tags) == ["b=2", "c"]
    fetched = conn.image.get_image(image.id)
    assert fetched.name == "after"
    assert fetched.properties["hw_firmware_type"] == "uefi"
    assert core_tags(server, credential) == {"b": ["2"], "c": [""]}


def test_update_image_with_a_bad_value_changes_nothing(conn):
    image = conn.image.get_image(conn.image.create_image(name="stable", tags=["keep=me"]).id)

    with pytest.raises(os_exceptions.BadRequestException):
        conn.image.update_image(
            image, name="changed", properties={**image.properties, "hw_firmware_type": "bogus"}
        )

    fetched = conn.image.get_image(image.id)
    assert fetched.name == "stable"
    assert fetched.tags == ["keep=me"]


def test_update_image_removing_server_attributes_is_forbidden(conn):
    # openstacksdk turns unknown keyword arguments into a new properties dict, which removes
    # every other property, __imagetype among them: the server refuses rather than lose them.
    image = conn.image.get_image(conn.image.create_image(name="p").id)

    with pytest.raises(os_exceptions.ForbiddenException):
        conn.image.update_image(image, hw_firmware_type="uefi")

    assert conn.image.get_image(image.id).properties["__imagetype"] == "private"


def test_delete_image_removes_it_and_its_tags(conn, server, credential):
    image = conn.image.create_image(name="gone", tags=["x=y"])

    conn.image.delete_image(image)

    with pytest.raises(os_exceptions.NotFoundException):
        conn.image.get_image(image.id)
    assert core_tags(server, credential) == {}


def test_get_image_of_another_project_is_not_found(conn, server, db):
    other = connect(server.base_url, make_user(db, uuid.uuid4().hex))
    theirs = other.image.create_image(name="theirs")

    with pytest.raises(os_exceptions.NotFoundException):
        conn.image.get_image(theirs.id)
    assert theirs.id not in {image.id for image in conn.image.images()}
    other.close()


def test_images_paging_returns_each_image_exactly_once(conn, db, project_id):
    # 2500 images in one insert, all created in the same second with 7 names: page boundaries
    # fall inside runs of equal sort keys, which keyset paging must cross without loss.
    now = utcnow()
    rows = [
        {"id": str(uuid.uuid4()), "project_id": project_id, "name": f"n{i % 7}",
         "properties": {}, "created_at": now, "updated_at": now}
        for i in range(2500)
    ]  # fmt: skip
    db.write(lambda s: s.execute(insert(Image), rows))
    expected = {row["id"] for row in rows}

    default_order = [image.id for image in conn.image.images(limit=300)]
    by_name = [image.id for image in conn.image.images(limit=170, sort="name:asc")]

    assert len(default_order) == len(expected) and set(default_order) == expected
    name_of = {row["id"]: row["name"] for row in rows}
    assert by_name == sorted(expected, key=lambda image_id: (name_of[image_id], image_id))


def test_images_tag_filter_pages_through_thousands(conn, db, project_id):
    def create(session):
        for i in range(1200):
            create_image_tx(
                session, project_id, {"name": f"i{i}"}, ["batch=b"] if i % 2 else [], {}
            )

    db.write(create)

    tagged = [image.name for image in conn.image.images(tag="batch=b", limit=250)]

    assert len(tagged) == 600
    assert set(tagged) == {f"i{i}" for i in range(1, 1200, 2)}
