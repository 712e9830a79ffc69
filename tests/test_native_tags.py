"""Native OpenStack tags, PUT and DELETE /v2/images/{image_id}/tags/{tag}, against the real server.

Pages: adding_a_tag_native_openstack_api, deleting_a_tag_native_openstack_api. Through the
official SDK (GlanceCreateTag, GlanceDeleteTag), and by hand the way openstacksdk
(``=`` unencoded) and glanceclient (``Content-Type: application/octet-stream``) send them.
"""

from __future__ import annotations

import uuid

import glanceclient
import httpx
import pytest
from glanceclient import exc as glance_exceptions
from huaweicloudsdkims.v2 import (
    BatchAddOrDeleteTagsRequest,
    BatchAddOrDeleteTagsRequestBody,
    GlanceCreateTagRequest,
    GlanceDeleteTagRequest,
    GlanceShowImageRequest,
    ImsClient,
    TagKeyValue,
)

from tests.conftest import new_project_id
from tests.support.aggregate import assert_aggregate_exact
from tests.support.clients import ims_client
from tests.support.openstack import connect, keystone_session, make_user
from tests.support.signing import sdk_signed_headers
from tests.support.tagging import create_image, refused, summary, tags_of

# The SDK marks its Glance tag methods deprecated; they are still what it sends.
pytestmark = pytest.mark.filterwarnings("ignore:Method 'glance_:DeprecationWarning")


def put_tag(ims: ImsClient, image_id: str, tag: str) -> None:
    ims.glance_create_tag(GlanceCreateTagRequest(image_id=image_id, tag=tag))


def delete_tag(ims: ImsClient, image_id: str, tag: str) -> None:
    ims.glance_delete_tag(GlanceDeleteTagRequest(image_id=image_id, tag=tag))


def native_tags(ims: ImsClient, image_id: str) -> list[str]:
    return sorted(ims.glance_show_image(GlanceShowImageRequest(image_id=image_id)).tags)


def by_hand(server, credential, method: str, path: str) -> httpx.Response:
    """A request as the OpenStack clients send it: raw path, octet-stream, no body."""
    url = server.base_url + path
    headers = sdk_signed_headers(
        method,
        url,
        credential.access,
        credential.secret,
        headers={"Content-Type": "application/octet-stream"},
    )
    return httpx.request(method, url, headers=headers)


# --- adding --------------------------------------------------------------------------------


def test_glance_create_tag_key_only_is_ims_key_with_empty_value(ims, image, db, project_id):
    put_tag(ims, image, "aaaa")
    assert tags_of(ims, image) == {"aaaa": ""}
    assert summary(ims) == {"aaaa": [""]}
    assert native_tags(ims, image) == ["aaaa"]
    assert_aggregate_exact(db, project_id)


def test_glance_create_tag_key_value_is_ims_key_and_value(ims, image, db, project_id):
    put_tag(ims, image, "os=linux")
    assert tags_of(ims, image) == {"os": "linux"}
    assert summary(ims) == {"os": ["linux"]}
    assert native_tags(ims, image) == ["os=linux"]
    assert_aggregate_exact(db, project_id)


def test_glance_create_tag_overwrites_value_of_same_key(ims, image, db, project_id):
    put_tag(ims, image, "os=linux")
    put_tag(ims, image, "os=windows")
    assert tags_of(ims, image) == {"os": "windows"}
    assert summary(ims) == {"os": ["windows"]}
    assert_aggregate_exact(db, project_id)


def test_glance_create_tag_is_idempotent(ims, image):
    put_tag(ims, image, "team")
    put_tag(ims, image, "team")
    assert native_tags(ims, image) == ["team"]


def test_glance_create_tag_ims_tags_read_back_as_native_strings(ims, image):
    body = BatchAddOrDeleteTagsRequestBody(
        action="create", tags=[TagKeyValue(key="env", value="prod"), TagKeyValue(key="x", value="")]
    )
    ims.batch_add_or_delete_tags(BatchAddOrDeleteTagsRequest(image_id=image, body=body))
    assert native_tags(ims, image) == ["env=prod", "x"]


@pytest.mark.parametrize("tag", ["a_b-C9", "ключ", "k=v_1-2"])
def test_glance_create_tag_letters_digits_underscore_hyphen_accepted(ims, image, tag):
    put_tag(ims, image, tag)
    assert native_tags(ims, image) == [tag]


@pytest.mark.parametrize("tag", ["a.b", "a b", "a+b", "k=v=w", "k=v.1", "a@b", "ubuntu:22.04"])
def test_glance_create_tag_other_printable_characters_accepted(ims, image, tag):
    # One rule on every native path (POST, PATCH, PUT): docs/decisions.md
    put_tag(ims, image, tag)
    assert native_tags(ims, image) == [tag]


@pytest.mark.parametrize("tag", ["=v", "k=", " k", "k=v "])
def test_glance_create_tag_empty_key_or_not_read_back_as_written_refused(ims, image, tag):
    refused(lambda: put_tag(ims, image, tag), 400, "IMG.0115")
    assert native_tags(ims, image) == []


def test_glance_create_tag_255_characters_accepted_256_refused(ims, image, db, project_id):
    put_tag(ims, image, "t" * 255)
    assert native_tags(ims, image) == ["t" * 255]
    refused(lambda: put_tag(ims, image, "u" * 256), 400, "IMG.0115")
    assert_aggregate_exact(db, project_id)


def test_glance_create_tag_tenth_accepted_eleventh_refused(ims, image):
    for i in range(10):
        put_tag(ims, image, f"t{i}")
    refused(lambda: put_tag(ims, image, "t10"), 400, "IMG.0116")
    put_tag(ims, image, "t3=overwrite")  # a new value of a present key is no new tag
    assert len(native_tags(ims, image)) == 10


def test_glance_create_tag_missing_image_is_404(ims):
    refused(lambda: put_tag(ims, str(uuid.uuid4()), "t"), 404, "IMG.0144")


def test_glance_create_tag_other_projects_image_is_404(server, ims, make_credential):
    other = ims_client(server.base_url, make_credential(new_project_id()))
    foreign = create_image(other)
    refused(lambda: put_tag(ims, foreign, "t"), 404, "IMG.0144")


def test_glance_create_tag_as_openstack_clients_send_it(server, credential, ims, image):
    response = by_hand(server, credential, "PUT", f"/v2/images/{image}/tags/os=linux")
    assert (response.status_code, response.content) == (204, b"")
    assert tags_of(ims, image) == {"os": "linux"}


# --- deleting ------------------------------------------------------------------------------


def test_glance_delete_tag_removes_it_everywhere(ims, image, db, project_id):
    put_tag(ims, image, "os=linux")
    put_tag(ims, image, "team")
    delete_tag(ims, image, "os=linux")
    assert tags_of(ims, image) == {"team": ""}
    assert summary(ims) == {"team": [""]}
    assert_aggregate_exact(db, project_id)


def test_glance_delete_tag_absent_tag_is_404(ims, image):
    refused(lambda: delete_tag(ims, image, "nothing"), 404, "IMG.0115")


def test_glance_delete_tag_must_name_the_tag_as_listed(ims, image):
    put_tag(ims, image, "os=linux")
    refused(lambda: delete_tag(ims, image, "os"), 404, "IMG.0115")
    refused(lambda: delete_tag(ims, image, "os=windows"), 404, "IMG.0115")
    assert native_tags(ims, image) == ["os=linux"]


def test_glance_delete_tag_any_listed_tag_can_be_deleted(ims, image):
    body = BatchAddOrDeleteTagsRequestBody(
        action="create", tags=[TagKeyValue(key="with space", value="a.b")]
    )
    ims.batch_add_or_delete_tags(BatchAddOrDeleteTagsRequest(image_id=image, body=body))
    delete_tag(ims, image, "with space=a.b")
    assert native_tags(ims, image) == []


def test_glance_delete_tag_missing_image_is_404(ims):
    refused(lambda: delete_tag(ims, str(uuid.uuid4()), "t"), 404, "IMG.0144")


def test_glance_delete_tag_as_openstack_clients_send_it(server, credential, ims, image):
    put_tag(ims, image, "os=linux")
    response = by_hand(server, credential, "DELETE", f"/v2/images/{image}/tags/os=linux")
    assert (response.status_code, response.content) == (204, b"")
    assert tags_of(ims, image) == {}


def test_glance_tags_without_credentials_are_401(server, image):
    response = httpx.put(f"{server.base_url}/v2/images/{image}/tags/t")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "IMG.0030"


def test_glance_create_image_metadata_native_tags_follow_the_same_limit(ims, db, project_id):
    image = create_image(ims, "t" * 255, "os=" + "l" * 100)
    assert tags_of(ims, image) == {"t" * 255: "", "os": "l" * 100}
    refused(lambda: create_image(ims, "u" * 256), 400, "IMG.0115")
    assert_aggregate_exact(db, project_id)


def test_glance_delete_tag_with_slash_written_through_ims(ims, image):
    body = BatchAddOrDeleteTagsRequestBody(
        action="create", tags=[TagKeyValue(key="path/like", value="a/b")]
    )
    ims.batch_add_or_delete_tags(BatchAddOrDeleteTagsRequest(image_id=image, body=body))
    assert native_tags(ims, image) == ["path/like=a/b"]
    delete_tag(ims, image, "path/like=a/b")
    assert native_tags(ims, image) == []


# --- the OpenStack clients -----------------------------------------------------------------


@pytest.fixture
def openstack_user(db, project_id):
    return make_user(db, project_id)


def test_openstacksdk_add_and_remove_tag(server, openstack_user, ims, image, db, project_id):
    connection = connect(server.base_url, openstack_user)
    connection.image.add_tag(image, "os=linux")
    connection.image.add_tag(image, "team")
    assert tags_of(ims, image) == {"os": "linux", "team": ""}
    assert sorted(connection.image.get_image(image).tags) == ["os=linux", "team"]
    connection.image.remove_tag(image, "os=linux")
    assert tags_of(ims, image) == {"team": ""}
    assert_aggregate_exact(db, project_id)


def test_glanceclient_update_and_delete_tag(server, openstack_user, ims, image):
    glance = glanceclient.Client("2", session=keystone_session(server.base_url, openstack_user))
    glance.image_tags.update(image, "os=linux")
    assert tags_of(ims, image) == {"os": "linux"}
    glance.image_tags.delete(image, "os=linux")
    assert tags_of(ims, image) == {}


def test_glanceclient_delete_absent_tag_is_not_found(server, openstack_user, image):
    glance = glanceclient.Client("2", session=keystone_session(server.base_url, openstack_user))
    with pytest.raises(glance_exceptions.HTTPNotFound):
        glance.image_tags.delete(image, "absent")
