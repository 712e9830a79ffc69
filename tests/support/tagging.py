"""Small helpers the tag tests share: images made and tags read through the official SDK."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkims.v2 import (
    GlanceCreateImageMetadataRequest,
    GlanceCreateImageMetadataRequestBody,
    ImsClient,
    ListImagesTagsRequest,
    ListImageTagsRequest,
)


def create_image(ims: ImsClient, *tags: str, name: str = "img") -> str:
    body = GlanceCreateImageMetadataRequestBody(name=name, tags=list(tags))
    return ims.glance_create_image_metadata(GlanceCreateImageMetadataRequest(body=body)).id


def tags_of(ims: ImsClient, image_id: str) -> dict[str, str]:
    """The image's tags as GET /v2/{project_id}/images/{image_id}/tags reports them."""
    response = ims.list_image_tags(ListImageTagsRequest(image_id=image_id))
    return {tag.key: tag.value for tag in response.tags}


def summary(ims: ImsClient) -> dict[str, list[str]]:
    """The core endpoint's view of the project."""
    return {tag.key: tag.values for tag in ims.list_images_tags(ListImagesTagsRequest()).tags}


def refused(call: Callable[[], Any], status: int, code: str) -> ClientRequestException:
    """Run an SDK call that must fail with this status and IMS error code."""
    with pytest.raises(ClientRequestException) as caught:
        call()
    error = caught.value
    assert (error.status_code, error.error_code) == (status, code), error.error_msg
    return error
