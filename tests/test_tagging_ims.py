"""The per-image IMS tag APIs through the official SDK, against the real server.

Pages: adding_an_image_tag, deleting_an_image_tag, querying_tags_of_an_image and
adding_or_deleting_image_tags_in_a_batch.
"""

from __future__ import annotations

import functools
import uuid

import pytest
from huaweicloudsdkims.v2 import (
    AddImageTagRequest,
    AddImageTagRequestBody,
    BatchAddOrDeleteTagsRequest,
    BatchAddOrDeleteTagsRequestBody,
    DeleteImageTagRequest,
    ImsClient,
    ListImageTagsRequest,
    ResourceTag,
    TagKeyValue,
)

from tests.conftest import new_project_id
from tests.support.aggregate import assert_aggregate_exact
from tests.support.clients import ims_client
from tests.support.tagging import (
    create_image,
    refused,
    summary,
    tags_of,
)


def add(ims: ImsClient, image_id: str, key: str, value: str | None) -> None:
    body = AddImageTagRequestBody(tag=ResourceTag(key=key, value=value))
    ims.add_image_tag(AddImageTagRequest(image_id=image_id, body=body))


def batch(ims: ImsClient, image_id: str, action: str, tags: list[tuple[str, str | None]]) -> None:
    body = BatchAddOrDeleteTagsRequestBody(
        action=action, tags=[TagKeyValue(key=k, value=v) for k, v in tags]
    )
    ims.batch_add_or_delete_tags(BatchAddOrDeleteTagsRequest(image_id=image_id, body=body))


def delete(ims: ImsClient, image_id: str, key: str) -> None:
    ims.delete_image_tag(DeleteImageTagRequest(image_id=image_id, key=key))


def ten_tags() -> list[tuple[str, str]]:
    return [(f"k{i}", f"v{i}") for i in range(10)]


# --- POST /v2/{project_id}/images/{image_id}/tags ------------------------------------------


def test_add_image_tag_shows_on_image_and_in_core_endpoint(ims, image, db, project_id):
    add(ims, image, "env", "prod")
    assert tags_of(ims, image) == {"env": "prod"}
    assert summary(ims) == {"env": ["prod"]}
    assert_aggregate_exact(db, project_id)


def test_add_image_tag_same_key_other_value_overwrites(ims, image, db, project_id):
    add(ims, image, "env", "prod")
    add(ims, image, "env", "dev")
    assert tags_of(ims, image) == {"env": "dev"}
    assert summary(ims) == {"env": ["dev"]}
    assert_aggregate_exact(db, project_id)


def test_add_image_tag_same_key_and_value_is_idempotent(ims, image):
    add(ims, image, "env", "prod")
    add(ims, image, "env", "prod")
    assert tags_of(ims, image) == {"env": "prod"}


def test_add_image_tag_empty_value_is_allowed(ims, image):
    add(ims, image, "backup", "")
    assert tags_of(ims, image) == {"backup": ""}


def test_add_image_tag_trims_outer_spaces(ims, image):
    add(ims, image, "  env ", " prod  ")
    assert tags_of(ims, image) == {"env": "prod"}


@pytest.mark.parametrize(
    ("key", "value", "accepted"),
    [
        ("k" * 36, "v", True),
        ("k" * 37, "v", False),
        ("k", "v" * 43, True),
        ("k", "v" * 44, False),
    ],
)
def test_add_image_tag_key_36_value_43_limits(ims, image, key, value, accepted):
    if accepted:
        add(ims, image, key, value)
        assert tags_of(ims, image) == {key: value}
    else:
        refused(lambda: add(ims, image, key, value), 400, "IMG.0115")
        assert tags_of(ims, image) == {}


@pytest.mark.parametrize("key", ["", "   "])
def test_add_image_tag_blank_key_is_refused(ims, image, key):
    refused(lambda: add(ims, image, key, "v"), 400, "IMG.0115")


def test_add_image_tag_missing_value_is_refused(ims, image):
    refused(lambda: add(ims, image, "k", None), 400, "IMG.0001")


def test_add_image_tag_tenth_accepted_eleventh_refused(ims, image, db, project_id):
    for key, value in ten_tags():
        add(ims, image, key, value)
    assert len(tags_of(ims, image)) == 10
    refused(lambda: add(ims, image, "k10", "v"), 400, "IMG.0116")
    assert len(tags_of(ims, image)) == 10
    add(ims, image, "k3", "new")  # overwriting at the limit is fine
    assert tags_of(ims, image)["k3"] == "new"
    assert_aggregate_exact(db, project_id)


def test_add_image_tag_missing_image_is_404(ims):
    refused(lambda: add(ims, str(uuid.uuid4()), "k", "v"), 404, "IMG.0144")


def test_add_image_tag_other_projects_image_is_404(server, ims, make_credential):
    other = ims_client(server.base_url, make_credential(new_project_id()))
    foreign = create_image(other)
    refused(lambda: add(ims, foreign, "k", "v"), 404, "IMG.0144")
    assert tags_of(other, foreign) == {}


def test_add_image_tag_path_of_other_project_is_403(server, credential, image):
    wrong = ims_client(server.base_url, credential, project_id=new_project_id())
    refused(lambda: add(wrong, image, "k", "v"), 403, "IMG.0026")


# --- GET /v2/{project_id}/images/{image_id}/tags -------------------------------------------


def test_list_image_tags_untagged_image_is_empty_list(ims, image):
    assert ims.list_image_tags(ListImageTagsRequest(image_id=image)).tags == []


def test_list_image_tags_returns_key_value_objects_by_key(ims):
    image = create_image(ims, "zone=b", "arch", "env=prod")
    tags = ims.list_image_tags(ListImageTagsRequest(image_id=image)).tags
    assert [(t.key, t.value) for t in tags] == [("arch", ""), ("env", "prod"), ("zone", "b")]


def test_list_image_tags_missing_image_is_404(ims):
    refused(
        lambda: ims.list_image_tags(ListImageTagsRequest(image_id=str(uuid.uuid4()))),
        404,
        "IMG.0144",
    )


# --- DELETE /v2/{project_id}/images/{image_id}/tags/{key} ----------------------------------


def test_delete_image_tag_removes_key_and_its_count(ims, image, db, project_id):
    add(ims, image, "env", "prod")
    add(ims, image, "tier", "web")
    delete(ims, image, "env")
    assert tags_of(ims, image) == {"tier": "web"}
    assert summary(ims) == {"tier": ["web"]}
    assert_aggregate_exact(db, project_id)


def test_delete_image_tag_absent_key_is_404(ims, image):
    add(ims, image, "env", "prod")
    refused(lambda: delete(ims, image, "tier"), 404, "IMG.0115")
    assert tags_of(ims, image) == {"env": "prod"}


def test_delete_image_tag_second_delete_is_404(ims, image):
    add(ims, image, "env", "prod")
    delete(ims, image, "env")
    refused(lambda: delete(ims, image, "env"), 404, "IMG.0115")


def test_delete_image_tag_key_length_and_characters_are_not_checked(ims, image):
    # No 400 for a key no tag could have: the answer is only "not found".
    refused(lambda: delete(ims, image, "x" * 300), 404, "IMG.0115")
    refused(lambda: delete(ims, image, "a b!?#%"), 404, "IMG.0115")


def test_delete_image_tag_key_with_slash_and_spaces(ims, image):
    batch(ims, image, "create", [("a/b c", "v"), ("keep", "")])
    delete(ims, image, "a/b c")
    assert tags_of(ims, image) == {"keep": ""}


def test_delete_image_tag_missing_image_is_404(ims):
    refused(lambda: delete(ims, str(uuid.uuid4()), "k"), 404, "IMG.0144")


# --- POST /v2/{project_id}/images/{image_id}/tags/action -----------------------------------


def test_batch_create_adds_and_overwrites(ims, image, db, project_id):
    batch(ims, image, "create", [("key1", "value1"), ("key2", "value2"), ("key3", "")])
    batch(ims, image, "create", [("key1", "other"), ("key2", "value2")])
    assert tags_of(ims, image) == {"key1": "other", "key2": "value2", "key3": ""}
    assert summary(ims) == {"key1": ["other"], "key2": ["value2"], "key3": [""]}
    assert_aggregate_exact(db, project_id)


def test_batch_delete_matching_value_or_no_value_removes(ims, image, db, project_id):
    batch(ims, image, "create", [("a", "1"), ("b", "2"), ("c", "3")])
    batch(ims, image, "delete", [("a", "1"), ("b", None), ("c", "not-3")])
    assert tags_of(ims, image) == {"c": "3"}
    assert_aggregate_exact(db, project_id)


def test_batch_delete_absent_tags_succeeds(ims, image):
    batch(ims, image, "delete", [("never", "there"), ("nor", None)])
    assert tags_of(ims, image) == {}


def test_batch_delete_characters_are_not_checked(ims, image):
    batch(ims, image, "create", [("odd key", "x")])
    batch(ims, image, "delete", [("odd key", None), ("!#$=%&", "=*?")])
    assert tags_of(ims, image) == {}


@pytest.mark.parametrize(
    ("key", "value", "accepted"),
    [
        ("k" * 255, "v", True),  # a native tag's key can be 255 long (issue 11 item 12)
        ("k" * 256, "v", False),
        ("k", "v" * 255, True),
        ("k", "v" * 256, False),
    ],
)
def test_batch_delete_key_255_value_255_limits(ims, image, key, value, accepted):
    call = functools.partial(batch, ims, image, "delete", [(key, value)])
    if accepted:
        call()
    else:
        refused(call, 400, "IMG.0115")


@pytest.mark.parametrize(
    ("key", "value", "accepted"),
    [("k" * 36, "v" * 43, True), ("k" * 37, "v", False), ("k", "v" * 44, False)],
)
def test_batch_create_key_36_value_43_limits(ims, image, key, value, accepted):
    call = functools.partial(batch, ims, image, "create", [(key, value)])
    if accepted:
        call()
        assert tags_of(ims, image) == {key: value}
    else:
        refused(call, 400, "IMG.0115")


@pytest.mark.parametrize("action", ["delete", "create"])
def test_batch_blank_key_is_refused(ims, image, action):
    refused(lambda: batch(ims, image, action, [("  ", "v")]), 400, "IMG.0115")


def test_batch_create_missing_value_is_refused(ims, image):
    refused(lambda: batch(ims, image, "create", [("k", None)]), 400, "IMG.0115")
    assert tags_of(ims, image) == {}


@pytest.mark.parametrize("action", ["create", "delete"])
def test_batch_duplicate_keys_are_refused(ims, image, action):
    refused(lambda: batch(ims, image, action, [("k", "1"), ("k", "2")]), 400, "IMG.0115")


@pytest.mark.parametrize("action", ["Create", "DELETE", "add", ""])
def test_batch_action_is_case_sensitive(ims, image, action):
    refused(lambda: batch(ims, image, action, [("k", "v")]), 400, "IMG.0001")
    assert tags_of(ims, image) == {}


def test_batch_empty_tag_list_is_refused(ims, image):
    refused(lambda: batch(ims, image, "create", []), 400, "IMG.0001")


def test_batch_create_ten_accepted_eleven_refused_whole(ims, image, db, project_id):
    batch(ims, image, "create", ten_tags())
    assert len(tags_of(ims, image)) == 10
    other = create_image(ims)
    eleven = [*ten_tags(), ("k10", "v10")]
    refused(lambda: batch(ims, other, "create", eleven), 400, "IMG.0116")
    assert tags_of(ims, other) == {}  # nothing half-written
    assert_aggregate_exact(db, project_id)


def test_batch_create_past_limit_with_existing_tags_is_refused(ims, image):
    batch(ims, image, "create", ten_tags()[:8])
    refused(
        lambda: batch(ims, image, "create", [("x", "1"), ("y", "2"), ("z", "3")]), 400, "IMG.0116"
    )
    assert len(tags_of(ims, image)) == 8


def test_batch_missing_image_is_404(ims):
    refused(lambda: batch(ims, str(uuid.uuid4()), "create", [("k", "v")]), 404, "IMG.0144")
    refused(lambda: batch(ims, str(uuid.uuid4()), "delete", [("k", "v")]), 404, "IMG.0144")
