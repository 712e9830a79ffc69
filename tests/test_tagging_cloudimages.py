"""The /v1/cloudimages/tags family through the official SDK, against the real server.

Pages: adding_or_modifying_a_tag (CreateOrUpdateTags), querying_tags (ListTags), and the
SDK's BatchDeleteTags (``DELETE /v1/{project_id}/cloudimages/{image_id}/tags/delete``).
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from huaweicloudsdkims.v2 import (
    AddOrUpdateTagsRequestBody,
    BatchDeleteTagsRequest,
    BatchDeleteTagsRequestBody,
    CreateOrUpdateTagsRequest,
    ImsClient,
    ListTagsRequest,
    ResourceTag,
)

from tests.conftest import new_project_id
from tests.support.aggregate import assert_aggregate_exact
from tests.support.clients import ims_client
from tests.support.signing import sdk_signed_headers
from tests.support.tagging import create_image, refused, summary, tags_of


def put(ims: ImsClient, image_id: str, tag: str | None = None, image_tag=None) -> None:
    body = AddOrUpdateTagsRequestBody(
        image_id=image_id,
        tag=tag,
        image_tag=ResourceTag(key=image_tag[0], value=image_tag[1]) if image_tag else None,
    )
    ims.create_or_update_tags(CreateOrUpdateTagsRequest(body=body))


def batch_delete(ims: ImsClient, image_id: str, tags: list[tuple[str, str | None]]) -> None:
    body = BatchDeleteTagsRequestBody(tags=[ResourceTag(key=k, value=v) for k, v in tags])
    ims.batch_delete_tags(BatchDeleteTagsRequest(image_id=image_id, body=body))


def list_tags(ims: ImsClient, **params) -> list[str]:
    return ims.list_tags(ListTagsRequest(**params)).tags


# --- PUT /v1/cloudimages/tags --------------------------------------------------------------


def test_create_or_update_tags_dotted_tag_is_key_and_value(ims, image, db, project_id):
    put(ims, image, tag="aaaa.1111")
    assert tags_of(ims, image) == {"aaaa": "1111"}
    assert summary(ims) == {"aaaa": ["1111"]}
    assert_aggregate_exact(db, project_id)


def test_create_or_update_tags_image_tag_object(ims, image):
    put(ims, image, image_tag=("key1", "value1"))
    assert tags_of(ims, image) == {"key1": "value1"}


def test_create_or_update_tags_modifies_existing_key(ims, image, db, project_id):
    put(ims, image, tag="env.prod")
    put(ims, image, image_tag=("env", "dev"))
    put(ims, image, tag="env.test")
    assert tags_of(ims, image) == {"env": "test"}
    assert summary(ims) == {"env": ["test"]}
    assert_aggregate_exact(db, project_id)


@pytest.mark.parametrize(("tag", "expected"), [("key.", {"key": ""}), ("key", {"key": ""})])
def test_create_or_update_tags_empty_value(ims, image, tag, expected):
    put(ims, image, tag=tag)
    assert tags_of(ims, image) == expected


@pytest.mark.parametrize(
    ("tag", "accepted"),
    [
        ("k" * 36 + ".v", True),
        ("k" * 37 + ".v", False),
        ("k." + "v" * 43, True),
        ("k." + "v" * 44, False),
    ],
)
def test_create_or_update_tags_dotted_key_36_value_43(ims, image, tag, accepted):
    if accepted:
        put(ims, image, tag=tag)
        key, value = tag.split(".", 1)
        assert tags_of(ims, image) == {key: value}
    else:
        refused(lambda: put(ims, image, tag=tag), 400, "IMG.0115")


@pytest.mark.parametrize(
    ("image_tag", "accepted"),
    [
        (("k" * 36, "v" * 43), True),
        (("k" * 37, "v"), False),
        (("k", "v" * 44), False),
    ],
)
def test_create_or_update_tags_image_tag_key_36_value_43(ims, image, image_tag, accepted):
    if accepted:
        put(ims, image, image_tag=image_tag)
        assert tags_of(ims, image) == dict([image_tag])
    else:
        refused(lambda: put(ims, image, image_tag=image_tag), 400, "IMG.0115")


@pytest.mark.parametrize("tag", ["a b.c", "a.b.c", "a.b c", "a=b.c", ".value", "a*.b"])
def test_create_or_update_tags_dotted_tag_characters(ims, image, tag):
    refused(lambda: put(ims, image, tag=tag), 400, "IMG.0115")
    assert tags_of(ims, image) == {}


def test_create_or_update_tags_dotted_tag_letters_of_any_script(ims, image):
    put(ims, image, tag="标签_1.值-2")
    assert tags_of(ims, image) == {"标签_1": "值-2"}


def test_create_or_update_tags_image_tag_trims_spaces(ims, image):
    put(ims, image, image_tag=(" key ", " a value "))
    assert tags_of(ims, image) == {"key": "a value"}


def test_create_or_update_tags_both_or_neither_refused(ims, image):
    refused(lambda: put(ims, image, tag="a.b", image_tag=("a", "b")), 400, "IMG.0001")
    refused(lambda: put(ims, image), 400, "IMG.0001")


def test_create_or_update_tags_eleventh_tag_refused(ims, image, db, project_id):
    for i in range(10):
        put(ims, image, tag=f"k{i}.v")
    refused(lambda: put(ims, image, tag="k10.v"), 400, "IMG.0116")
    put(ims, image, tag="k0.changed")
    assert len(tags_of(ims, image)) == 10
    assert_aggregate_exact(db, project_id)


def test_create_or_update_tags_malformed_image_id_is_400(ims):
    refused(lambda: put(ims, "not-a-uuid", tag="a.b"), 400, "IMG.0066")


def test_create_or_update_tags_missing_image_is_404(ims):
    refused(lambda: put(ims, str(uuid.uuid4()), tag="a.b"), 404, "IMG.0144")


def test_create_or_update_tags_other_projects_image_is_404(server, ims, make_credential):
    other = ims_client(server.base_url, make_credential(new_project_id()))
    foreign = create_image(other)
    refused(lambda: put(ims, foreign, tag="a.b"), 404, "IMG.0144")


def test_create_or_update_tags_missing_image_id_is_400(server, credential):
    url = f"{server.base_url}/v1/cloudimages/tags"
    body = b'{"tag": "a.b"}'
    headers = sdk_signed_headers("PUT", url, credential.access, credential.secret, body=body)
    response = httpx.put(url, headers=headers, content=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "IMG.0001"


# --- GET /v1/cloudimages/tags --------------------------------------------------------------


def test_list_tags_distinct_tags_of_project_as_strings(ims, server, make_credential):
    create_image(ims, "env=prod", "team")
    create_image(ims, "env=prod", "env2=x")
    other = ims_client(server.base_url, make_credential(new_project_id()))
    create_image(other, "secret=1")
    assert list_tags(ims) == ["env2=x", "env=prod", "team"]


def test_list_tags_empty_project(ims):
    assert list_tags(ims) == []


def test_list_tags_filters_select_images(ims):
    create_image(ims, "a=1", name="alpha")
    create_image(ims, "b=2", name="beta")
    assert list_tags(ims, name="alpha") == ["a=1"]
    assert list_tags(ims, id=str(uuid.uuid4())) == []
    assert list_tags(ims, status="queued") == ["a=1", "b=2"]
    assert list_tags(ims, status="active") == []


def test_list_tags_tag_filter_uses_key_equals_value(server, credential, ims):
    create_image(ims, "a=b", "x")
    create_image(ims, "a=c", "y")
    url = f"{server.base_url}/v1/cloudimages/tags"
    query = [("tag", "a=b")]
    headers = sdk_signed_headers("GET", url, credential.access, credential.secret, query=query)
    response = httpx.get(url, params=query, headers=headers)
    assert response.status_code == 200
    assert response.json() == {"tags": ["a=b", "x"]}


def test_list_tags_limit_and_page_count_images(ims):
    for i in range(5):
        create_image(ims, f"n={i}", name=f"img{i}")
    pages = [list_tags(ims, limit=1, page=p) for p in range(1, 6)]
    assert sorted(tag for page in pages for tag in page) == [f"n={i}" for i in range(5)]
    assert all(len(page) == 1 for page in pages)
    assert [len(list_tags(ims, limit=2, page=p)) for p in (1, 2, 3, 4)] == [2, 2, 1, 0]
    assert len(list_tags(ims)) == 5  # 500 images by default


def test_list_tags_marker_and_sort(server, credential, ims):
    ids = [create_image(ims, f"n={i}", name=f"img{i}") for i in range(4)]
    url = f"{server.base_url}/v1/cloudimages/tags"
    query = [("sort_key", "name"), ("sort_dir", "asc"), ("marker", ids[1]), ("limit", "1")]
    headers = sdk_signed_headers("GET", url, credential.access, credential.secret, query=query)
    response = httpx.get(url, params=query, headers=headers)
    assert response.json() == {"tags": ["n=2"]}


@pytest.mark.parametrize("page", [0, -1])
def test_list_tags_page_must_be_positive(ims, page):
    refused(lambda: list_tags(ims, page=page), 400, "IMG.0001")


def test_list_tags_unknown_marker_is_400(server, credential):
    url = f"{server.base_url}/v1/cloudimages/tags"
    query = [("marker", str(uuid.uuid4()))]
    headers = sdk_signed_headers("GET", url, credential.access, credential.secret, query=query)
    response = httpx.get(url, params=query, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "IMG.0001"


def test_list_tags_bad_sort_key_is_400(ims, server, credential):
    url = f"{server.base_url}/v1/cloudimages/tags"
    query = [("sort_key", "owner")]
    headers = sdk_signed_headers("GET", url, credential.access, credential.secret, query=query)
    assert httpx.get(url, params=query, headers=headers).status_code == 400


# --- DELETE /v1/{project_id}/cloudimages/{image_id}/tags/delete ----------------------------


def test_batch_delete_tags_removes_matching_and_ignores_absent(ims, image, db, project_id):
    put(ims, image, tag="a.1")
    put(ims, image, tag="b.2")
    put(ims, image, tag="c.3")
    batch_delete(ims, image, [("a", "1"), ("b", None), ("c", "other"), ("zz", None)])
    assert tags_of(ims, image) == {"c": "3"}
    assert summary(ims) == {"c": ["3"]}
    assert_aggregate_exact(db, project_id)


@pytest.mark.parametrize(
    ("key", "value", "accepted"),
    [("k" * 255, "v" * 255, True), ("k" * 256, "v", False), ("k", "v" * 256, False)],
)
def test_batch_delete_tags_key_255_value_255(ims, image, key, value, accepted):
    if accepted:
        batch_delete(ims, image, [(key, value)])
    else:
        refused(lambda: batch_delete(ims, image, [(key, value)]), 400, "IMG.0115")


def test_batch_delete_tags_empty_list_refused(ims, image):
    refused(lambda: batch_delete(ims, image, []), 400, "IMG.0001")


def test_batch_delete_tags_missing_image_is_404(ims):
    refused(lambda: batch_delete(ims, str(uuid.uuid4()), [("k", None)]), 404, "IMG.0144")


def test_batch_delete_tags_path_of_other_project_is_403(server, credential, image):
    wrong = ims_client(server.base_url, credential, project_id=new_project_id())
    refused(lambda: batch_delete(wrong, image, [("k", None)]), 403, "IMG.0026")
