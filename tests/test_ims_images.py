"""IMS image queries and updates, and the native API's Glance requests, through huaweicloudsdkims.

Every call is the official SDK's, signed with AK/SK, against the real server. Images are set up
through the domain layer (quick); what is checked is what the SDK reports.
"""

from __future__ import annotations

import uuid

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkims.v2 import (
    GlanceCreateImageMetadataRequest,
    GlanceCreateImageMetadataRequestBody,
    GlanceDeleteImageRequest,
    GlanceDeleteImageRequestBody,
    GlanceListImageSchemasRequest,
    GlanceListImagesRequest,
    GlanceShowImageRequest,
    GlanceShowImageSchemasRequest,
    GlanceUpdateImageRequest,
    GlanceUpdateImageRequestBody,
    ListImagesRequest,
    ListVersionsRequest,
    ShowVersionRequest,
    UpdateImageRequest,
    UpdateImageRequestBody,
)

from imstags.domain.images.attributes import split_create_body
from imstags.domain.images.records import create_image_tx
from tests.support.clients import ims_client

# The SDK marks its Glance methods deprecated; calling them is the point of these tests.
glance = pytest.mark.filterwarnings("ignore:Method 'glance_:DeprecationWarning")


@pytest.fixture
def client(server, credential):
    return ims_client(server.base_url, credential)


def make_image(db, project_id: str, name: str, tags=(), **attributes) -> str:
    """Through the same validation and defaults as the native create (image_attributes)."""
    fields = split_create_body({"name": name, **attributes})
    record = db.write(
        lambda s: create_image_tx(s, project_id, fields.columns, list(tags), fields.properties)
    )
    return record.image.id


def names(response) -> list[str]:
    return [image.name for image in response.images]


def test_list_images_filters_by_tag_pair_and_key_only(client, db, project_id):
    make_image(db, project_id, "prod", ["env=prod"])
    make_image(db, project_id, "dev", ["env=dev"])
    make_image(db, project_id, "golden", ["golden", "env=prod"])

    assert sorted(names(client.list_images(ListImagesRequest(tag="env=prod")))) == [
        "golden",
        "prod",
    ]
    assert names(client.list_images(ListImagesRequest(tag="golden"))) == ["golden"]
    assert names(client.list_images(ListImagesRequest(tag="env"))) == []


def test_list_images_filters_by_imagetype_platform_and_os_type(client, db, project_id):
    make_image(db, project_id, "ubuntu", __os_version="Ubuntu 22.04 server 64bit")
    make_image(db, project_id, "windows", __os_version="Windows Server 2016 Standard 64bit")
    make_image(db, project_id, "gold", __imagetype="gold", __platform="CentOS", __os_type="Linux")

    by_platform = client.list_images(ListImagesRequest(platform="Ubuntu"))
    by_os_type = client.list_images(ListImagesRequest(os_type="Windows"))
    private = client.list_images(ListImagesRequest(imagetype="private", sort_key="name"))
    gold_centos = client.list_images(ListImagesRequest(imagetype="gold", platform="CentOS"))

    assert names(by_platform) == ["ubuntu"]
    assert by_platform.images[0].os_type == "Linux"
    assert by_platform.images[0].os_bit == "64"
    assert names(by_os_type) == ["windows"]
    assert names(private) == ["windows", "ubuntu"]  # sort_dir defaults to desc
    assert names(gold_centos) == ["gold"]


def test_list_images_pages_with_marker_and_limit_return_each_once(client, db, project_id):
    created = {make_image(db, project_id, f"img-{i % 4}") for i in range(23)}

    seen: list[str] = []
    marker = None
    while True:
        page = client.list_images(
            ListImagesRequest(limit=5, marker=marker, sort_key="name", sort_dir="asc")
        )
        seen += [image.id for image in page.images]
        if len(page.images) < 5:
            break
        marker = page.images[-1].id

    assert len(seen) == len(created) and set(seen) == created


def test_list_images_created_at_filter_uses_operators(client, db, project_id):
    make_image(db, project_id, "recent")

    after = client.list_images(ListImagesRequest(created_at="gte:2020-01-01T00:00:00Z"))
    before = client.list_images(ListImagesRequest(created_at="lt:2020-01-01T00:00:00Z"))

    assert names(after) == ["recent"]
    assert names(before) == []


def test_list_images_shows_only_the_callers_project(client, db, project_id):
    make_image(db, uuid.uuid4().hex, "someone-elses", ["env=prod"])
    make_image(db, project_id, "mine")

    assert names(client.list_images(ListImagesRequest())) == ["mine"]
    assert names(client.list_images(ListImagesRequest(tag="env=prod"))) == []


@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        (ListImagesRequest(sort_key="owner"), "sort_key"),
        (ListImagesRequest(sort_dir="up"), "sort_dir"),
        (ListImagesRequest(marker=str(uuid.uuid4())), "marker"),
        (ListImagesRequest(created_at="soon"), "created_at"),
        (ListImagesRequest(protected=None, min_ram=-1), "min_ram"),
    ],
)
def test_list_images_with_a_bad_parameter_is_400(client, request_, fragment):
    with pytest.raises(ClientRequestException) as raised:
        client.list_images(request_)

    assert raised.value.status_code == 400
    assert raised.value.error_code == "IMG.0001"
    assert fragment in raised.value.error_msg


def test_update_image_changes_name_description_and_min_ram(client, db, project_id):
    image_id = make_image(db, project_id, "old")

    updated = client.update_image(
        UpdateImageRequest(
            image_id,
            [
                UpdateImageRequestBody(op="replace", path="/name", value="new name"),
                UpdateImageRequestBody(op="add", path="/__description", value="for tests"),
                UpdateImageRequestBody(op="replace", path="/min_ram", value="2048"),
            ],
        )
    )

    assert updated.name == "new name"
    assert updated.description == "for tests"
    assert updated.min_ram == 2048
    listed = client.list_images(ListImagesRequest(name="new name"))
    assert [image.id for image in listed.images] == [image_id]


@pytest.mark.parametrize(
    ("op", "path", "value", "code"),
    [
        ("replace", "/name", " padded", "IMG.0003"),
        ("replace", "/name", "x" * 129, "IMG.0002"),
        ("add", "/hw_firmware_type", "efi", "IMG.0141"),
        ("add", "/__description", "a <b>", "IMG.0054"),
        ("remove", "/__description", None, "IMG.0035"),
        ("replace", "/disk_format", "raw", "IMG.0105"),
        ("add", "/MyAttr", "x", "IMG.0001"),
    ],
)
def test_update_image_with_an_invalid_change_is_400(client, db, project_id, op, path, value, code):
    image_id = make_image(db, project_id, "unchanged")

    with pytest.raises(ClientRequestException) as raised:
        client.update_image(
            UpdateImageRequest(image_id, [UpdateImageRequestBody(op=op, path=path, value=value)])
        )

    assert (raised.value.status_code, raised.value.error_code) == (400, code)
    assert names(client.list_images(ListImagesRequest())) == ["unchanged"]


def test_update_image_of_a_read_only_attribute_is_403(client, db, project_id):
    image_id = make_image(db, project_id, "ro")

    with pytest.raises(ClientRequestException) as raised:
        client.update_image(
            UpdateImageRequest(
                image_id, [UpdateImageRequestBody(op="replace", path="/status", value="active")]
            )
        )

    assert (raised.value.status_code, raised.value.error_code) == (403, "IMG.0026")


def test_update_image_of_another_project_is_404(client, db):
    theirs = make_image(db, uuid.uuid4().hex, "theirs")

    with pytest.raises(ClientRequestException) as raised:
        client.update_image(
            UpdateImageRequest(
                theirs, [UpdateImageRequestBody(op="replace", path="/name", value="mine")]
            )
        )

    assert (raised.value.status_code, raised.value.error_code) == (404, "IMG.0144")


@glance
def test_glance_list_images_filters_by_tag_and_pages(client, db, project_id):
    ids = {make_image(db, project_id, f"g{i}", ["set=a"]) for i in range(5)}
    make_image(db, project_id, "untagged")

    first = client.glance_list_images(GlanceListImagesRequest(tag="set=a", limit=3))
    assert len(first.images) == 3 and first.next is not None
    marker = first.images[-1].id
    rest = client.glance_list_images(GlanceListImagesRequest(tag="set=a", limit=3, marker=marker))

    assert rest.next is None
    assert {image.id for image in first.images + rest.images} == ids
    assert first.schema == "/v2/schemas/images"


@glance
def test_glance_show_and_update_image(client, db, project_id):
    image_id = make_image(db, project_id, "shown", ["a=b"])

    shown = client.glance_show_image(GlanceShowImageRequest(image_id))
    updated = client.glance_update_image(
        GlanceUpdateImageRequest(
            image_id,
            [
                GlanceUpdateImageRequestBody(op="replace", path="/name", value="renamed"),
                GlanceUpdateImageRequestBody(op="add", path="/__os_bit", value="32"),
            ],
        )
    )

    assert (shown.name, shown.tags, shown.status, shown.imagetype) == (
        "shown", ["a=b"], "queued", "private",
    )  # fmt: skip
    assert (updated.name, updated.os_bit) == ("renamed", "32")


@glance
def test_glance_create_image_metadata_then_delete_image(client):
    created = client.glance_create_image_metadata(
        GlanceCreateImageMetadataRequest(
            body=GlanceCreateImageMetadataRequestBody(
                name="from-sdk",
                os_version="CentOS 7.9 64bit",
                tags=["test=testvalue", "image=imagevalue"],
                visibility="private",
                protected=False,
            )
        )
    )

    assert (created.status, created.name, created.platform, created.os_type) == (
        "queued", "from-sdk", "CentOS", "Linux",
    )  # fmt: skip
    assert sorted(created.tags) == ["image=imagevalue", "test=testvalue"]
    client.glance_delete_image(
        GlanceDeleteImageRequest(created.id, GlanceDeleteImageRequestBody(delete_backup=False))
    )
    with pytest.raises(ClientRequestException) as raised:
        client.glance_show_image(GlanceShowImageRequest(created.id))
    assert (raised.value.status_code, raised.value.error_code) == (404, "IMG.0144")


@glance
@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"min_disk": 2048}, "IMG.0055"),
        ({"visibility": "public"}, "IMG.0001"),
        ({"disk_format": "exe"}, "IMG.0072"),
        ({"tags": ["a=b=c", "bad\u0001tag"]}, "IMG.0115"),
    ],
)
def test_glance_create_image_metadata_with_a_bad_value_is_400(client, fields, code):
    with pytest.raises(ClientRequestException) as raised:
        client.glance_create_image_metadata(
            GlanceCreateImageMetadataRequest(
                body=GlanceCreateImageMetadataRequestBody(name="bad", **fields)
            )
        )

    assert (raised.value.status_code, raised.value.error_code) == (400, code)
    assert client.list_images(ListImagesRequest()).images == []


@glance
def test_glance_image_schemas_describe_images(client):
    image_schema = client.glance_show_image_schemas(GlanceShowImageSchemasRequest())
    list_schema = client.glance_list_image_schemas(GlanceListImageSchemasRequest())

    assert image_schema.name == "image"
    assert "tags" in image_schema.properties and "__imagetype" in image_schema.properties
    assert list_schema.name == "images"
    assert "images" in list_schema.properties


def test_list_versions_and_show_version(client):
    listed = client.list_versions(ListVersionsRequest())
    shown = client.show_version(ShowVersionRequest(version="v2.0"))

    assert [(v.id, v.status) for v in listed.versions] == [
        ("v2.2", "CURRENT"), ("v2.1", "SUPPORTED"), ("v2.0", "SUPPORTED"),
    ]  # fmt: skip
    assert listed.versions[0].links[0].href.endswith("/v2/")
    assert [v.id for v in shown.versions] == ["v2.0"]
