"""python-glanceclient against the real server: it reads /v2/schemas/image to build its image
objects and JSON patches, so this checks that the schema fits the documents served."""

from __future__ import annotations

import glanceclient
import pytest

from tests.support.openstack import keystone_session, make_user


@pytest.fixture
def glance(server, db, project_id):
    user = make_user(db, project_id)
    return glanceclient.Client("2", session=keystone_session(server.base_url, user))


def test_glanceclient_create_list_update_and_delete(glance):
    image = glance.images.create(
        name="gc", tags=["env=prod"], disk_format="qcow2", container_format="bare", os_distro="x"
    )
    assert (image["status"], image["tags"]) == ("queued", ["env=prod"])

    listed = [found["id"] for found in glance.images.list(filters={"tag": ["env=prod"]})]
    updated = glance.images.update(
        image["id"], name="gc2", purpose="ci", remove_props=["os_distro"]
    )

    assert listed == [image["id"]]
    assert (updated["name"], updated["purpose"]) == ("gc2", "ci")
    assert "os_distro" not in updated
    glance.images.delete(image["id"])
    assert list(glance.images.list()) == []


def test_glanceclient_tag_update_and_delete(glance):
    image = glance.images.create(name="tags", tags=["a=b"])

    glance.image_tags.update(image["id"], "k=v")
    glance.image_tags.delete(image["id"], "a=b")

    assert glance.images.get(image["id"])["tags"] == ["k=v"]
