"""Tests of your own automation against imstags: copy this file, `pip install imstags
huaweicloudsdkims openstacksdk pytest`, and run `pytest`."""

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ServerResponseException
from huaweicloudsdkims.v2 import (
    BatchAddOrDeleteTagsRequest,
    BatchAddOrDeleteTagsRequestBody,
    ListImagesTagsRequest,
    ResourceTag,
)

WEB = {"id": "5e2b7c1a-0d4f-4e8b-9a6c-3f1d2e7b8a90", "name": "web-01", "tags": {"env": "prod"}}


@pytest.mark.imstags_seed(images=[WEB, {"name": "db-01", "tags": {"env": "dev"}}])
def test_the_project_starts_with_its_seeded_tags(imstags_ims):
    response = imstags_ims.list_images_tags(ListImagesTagsRequest())
    assert [(tag.key, sorted(tag.values)) for tag in response.tags] == [("env", ["dev", "prod"])]


@pytest.mark.imstags_seed(images=[WEB])
def test_tags_written_with_the_sdk_are_seen_by_openstack(imstags_ims, imstags_openstack):
    body = BatchAddOrDeleteTagsRequestBody(
        action="create", tags=[ResourceTag(key="owner", value="alice")]
    )
    imstags_ims.batch_add_or_delete_tags(BatchAddOrDeleteTagsRequest(image_id=WEB["id"], body=body))
    image = imstags_openstack.image.get_image(WEB["id"])
    assert sorted(image.tags) == ["env=prod", "owner=alice"]


def test_a_failing_service_is_reported(imstags_ims, imstags_faults):
    imstags_faults.add(operation="Querying All Image Tags", status=503, code="IMG.0061", times=1)
    with pytest.raises(ServerResponseException) as failure:
        imstags_ims.list_images_tags(ListImagesTagsRequest())
    assert (failure.value.status_code, failure.value.error_code) == (503, "IMG.0061")
    assert imstags_ims.list_images_tags(ListImagesTagsRequest()).tags == []
