"""GET /v2/{project_id}/images/tags through the official SDK, against the real server."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkims.v2 import (
    BatchAddOrDeleteTagsRequest,
    BatchAddOrDeleteTagsRequestBody,
    GlanceCreateImageMetadataRequest,
    GlanceCreateImageMetadataRequestBody,
    GlanceDeleteImageRequest,
    ImsClient,
    ListImagesTagsRequest,
    TagKeyValue,
)
from sqlalchemy import select

from imstags.storage.models import TagCount
from tests.conftest import new_project_id
from tests.support.aggregate import assert_aggregate_exact
from tests.support.clients import ims_client


@pytest.fixture
def new_image(ims: ImsClient) -> Callable[..., str]:
    def create(*tags: str) -> str:
        body = GlanceCreateImageMetadataRequestBody(name="img", tags=list(tags))
        return ims.glance_create_image_metadata(GlanceCreateImageMetadataRequest(body=body)).id

    return create


def summary(ims: ImsClient) -> dict[str, list[str]]:
    response = ims.list_images_tags(ListImagesTagsRequest())
    return {tag.key: tag.values for tag in response.tags}


def tags_action(
    ims: ImsClient, image_id: str, action: str, tags: list[tuple[str, str | None]]
) -> None:
    body = BatchAddOrDeleteTagsRequestBody(
        action=action, tags=[TagKeyValue(key=k, value=v) for k, v in tags]
    )
    ims.batch_add_or_delete_tags(BatchAddOrDeleteTagsRequest(image_id=image_id, body=body))


def test_list_images_tags_empty_project_returns_empty_list(ims):
    assert ims.list_images_tags(ListImagesTagsRequest()).tags == []


def test_list_images_tags_shows_tags_given_at_image_creation(ims, new_image, db, project_id):
    new_image("os=linux", "team")
    assert summary(ims) == {"os": ["linux"], "team": [""]}
    assert_aggregate_exact(db, project_id)


def test_list_images_tags_key_only_tag_has_empty_string_value(ims, new_image):
    image = new_image()
    tags_action(ims, image, "create", [("backup", "")])
    assert summary(ims) == {"backup": [""]}


def test_list_images_tags_lists_each_value_once_across_images(ims, new_image, db, project_id):
    first, second, third = new_image(), new_image(), new_image()
    tags_action(ims, first, "create", [("env", "prod"), ("tier", "web")])
    tags_action(ims, second, "create", [("env", "prod"), ("tier", "db")])
    tags_action(ims, third, "create", [("env", "dev")])
    assert summary(ims) == {"env": ["dev", "prod"], "tier": ["db", "web"]}
    assert_aggregate_exact(db, project_id)


def test_list_images_tags_orders_keys_and_values_by_code_point(ims, new_image):
    image_a, image_b = new_image(), new_image()
    tags_action(ims, image_a, "create", [("b", "z"), ("B", "y"), ("a", "x")])
    tags_action(ims, image_b, "create", [("b", "Z"), ("a", "")])
    response = ims.list_images_tags(ListImagesTagsRequest())
    assert [t.key for t in response.tags] == ["B", "a", "b"]
    assert [t.values for t in response.tags] == [["y"], ["", "x"], ["Z", "z"]]


def test_list_images_tags_overwrite_drops_value_no_image_carries(ims, new_image, db, project_id):
    image = new_image()
    tags_action(ims, image, "create", [("env", "prod")])
    tags_action(ims, image, "create", [("env", "staging")])
    assert summary(ims) == {"env": ["staging"]}
    assert_aggregate_exact(db, project_id)


def test_list_images_tags_overwrite_keeps_value_another_image_carries(ims, new_image):
    first, second = new_image(), new_image()
    tags_action(ims, first, "create", [("env", "prod")])
    tags_action(ims, second, "create", [("env", "prod")])
    tags_action(ims, first, "create", [("env", "dev")])
    assert summary(ims) == {"env": ["dev", "prod"]}


def test_list_images_tags_same_tag_twice_is_idempotent(ims, new_image, db, project_id):
    image = new_image()
    tags_action(ims, image, "create", [("env", "prod")])
    tags_action(ims, image, "create", [("env", "prod")])
    assert summary(ims) == {"env": ["prod"]}
    with db.read() as session:
        stored = session.execute(
            select(TagCount.key, TagCount.value, TagCount.image_count).where(
                TagCount.project_id == project_id
            )
        ).all()
    assert stored == [("env", "prod", 1)]


def test_list_images_tags_delete_removes_value_and_key(ims, new_image, db, project_id):
    image = new_image()
    tags_action(ims, image, "create", [("env", "prod"), ("keep", "me")])
    tags_action(ims, image, "delete", [("env", "prod")])
    assert summary(ims) == {"keep": ["me"]}
    assert_aggregate_exact(db, project_id)


def test_list_images_tags_delete_by_key_without_value(ims, new_image):
    image = new_image()
    tags_action(ims, image, "create", [("env", "prod")])
    tags_action(ims, image, "delete", [("env", None)])
    assert summary(ims) == {}


def test_list_images_tags_delete_with_other_value_changes_nothing(ims, new_image):
    image = new_image()
    tags_action(ims, image, "create", [("env", "prod")])
    tags_action(ims, image, "delete", [("env", "dev"), ("absent", "x")])
    assert summary(ims) == {"env": ["prod"]}


def test_list_images_tags_image_deletion_drops_its_values(ims, new_image, db, project_id):
    doomed, survivor = new_image(), new_image()
    tags_action(ims, doomed, "create", [("env", "prod"), ("only", "doomed")])
    tags_action(ims, survivor, "create", [("env", "prod")])
    ims.glance_delete_image(GlanceDeleteImageRequest(image_id=doomed))
    assert summary(ims) == {"env": ["prod"]}
    assert_aggregate_exact(db, project_id)


def test_list_images_tags_projects_do_not_see_each_other(server, make_credential, ims, new_image):
    image = new_image()
    tags_action(ims, image, "create", [("mine", "yes")])
    other = ims_client(server.base_url, make_credential(new_project_id()))
    assert other.list_images_tags(ListImagesTagsRequest()).tags == []
    # Nor can the other project tag this project's image: it does not exist for it.
    with pytest.raises(ClientRequestException) as caught:
        tags_action(other, image, "create", [("theirs", "no")])
    assert caught.value.status_code == 404
    assert summary(ims) == {"mine": ["yes"]}


def test_list_images_tags_answers_if_none_match_with_304(server, credential, new_image, ims):
    import httpx

    from tests.support.signing import sdk_signed_headers

    image = new_image()
    tags_action(ims, image, "create", [("a", "1")])
    url = f"{server.base_url}/v2/{credential.project_id}/images/tags"

    def get(extra: dict[str, str]) -> httpx.Response:
        headers = sdk_signed_headers(
            "GET", url, credential.access, credential.secret, headers=extra
        )
        return httpx.get(url, headers=headers)

    first = get({})
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert get({"If-None-Match": etag}).status_code == 304
    tags_action(ims, image, "create", [("a", "2")])
    changed = get({"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json() == {"tags": [{"key": "a", "values": ["2"]}]}
