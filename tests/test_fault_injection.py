"""Fault injection rules: matching, seeded probability, count limits, nothing written, and what
real clients do with the faults (huaweicloudsdkims's retries, openstacksdk's timeout)."""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator

import httpx
import pytest
from huaweicloudsdkcore.exceptions.exceptions import ServerResponseException
from huaweicloudsdkcore.retry.backoff_strategy import BackoffStrategies
from huaweicloudsdkims.v2 import (
    BatchAddOrDeleteTagsRequest,
    BatchAddOrDeleteTagsRequestBody,
    ListImagesTagsRequest,
    ResourceTag,
)
from openstack.exceptions import ResourceFailure, ResourceTimeout

from imstags.testing import server
from imstags.testing.emulator import AdminError, Emulator, FaultRules, TestProject

IMAGE = {"id": "7c1e0b2a-4d3f-4a5e-8b6c-9d0e1f2a3b4c", "name": "web", "tags": {"env": "prod"}}


@pytest.fixture
def faults(imstags_faults: FaultRules) -> Iterator[FaultRules]:
    yield imstags_faults


def unsigned(emulator: Emulator, method: str, path: str, **kwargs) -> int:
    """Status of a request without credentials: 401 when no rule fires (the rules act first)."""
    return httpx.request(method, emulator.base_url + path, timeout=30, **kwargs).status_code


@pytest.mark.parametrize(
    "rule",
    [
        {"operation": "Querying All Image Tags"},  # the reference's operation name
        {"operation": "/v2/{project_id}/images/tags"},  # the route template
        {"operation": "/v2/{project_id}/images/tags", "method": "GET", "project": "p-match"},
    ],
)
def test_rule_matches_its_operation_method_and_project(imstags_server, faults, rule):
    faults.add(status=503, **rule)
    assert unsigned(imstags_server, "GET", "/v2/p-match/images/tags") == 503
    assert unsigned(imstags_server, "GET", "/v2/p-match/images/abc/tags") == 401


def test_rule_does_not_match_another_project_or_method(imstags_server, faults):
    faults.add(operation="/v2/{project_id}/images/tags", method="GET", project="p1", status=503)
    assert unsigned(imstags_server, "GET", "/v2/p2/images/tags") == 401
    assert unsigned(imstags_server, "POST", "/v2/p1/images/tags") in (401, 405)
    assert unsigned(imstags_server, "GET", "/v2/p1/images/tags") == 503


def test_rule_matches_a_tag_key_named_in_the_body_or_the_path(imstags_server, faults):
    faults.add(tag_key="owner", status=409, code="IMG.0035", message="injected")
    action = "/v2/p/images/abc/tags/action"
    named = {"action": "create", "tags": [{"key": "owner", "value": "x"}]}
    other = {"action": "create", "tags": [{"key": "team", "value": "x"}]}
    assert unsigned(imstags_server, "POST", action, json=other) == 401
    response = httpx.post(imstags_server.base_url + action, json=named)
    assert (response.status_code, response.json()) == (
        409,
        {"error": {"code": "IMG.0035", "message": "injected"}},
    )
    assert unsigned(imstags_server, "DELETE", "/v2/p/images/abc/tags/owner") == 409
    assert unsigned(imstags_server, "PUT", "/v2/images/abc/tags/owner=x") == 409


def test_seeded_probability_gives_the_same_count_every_time(imstags_server, faults):
    draws = random.Random(1234)  # noqa: S311  # the generator a rule seeded 1234 uses
    expected = sum(draws.random() < 0.1 for _ in range(1000))
    counts = []
    with httpx.Client(base_url=imstags_server.base_url, timeout=30) as client:
        for run in range(2):
            rule = faults.add(
                id=f"seeded-{run}", operation="Querying All Image Tags", status=503,
                probability=0.1, seed=1234,
            )  # fmt: skip
            statuses = [client.get("/v2/p/images/tags").status_code for _ in range(1000)]
            counts.append(statuses.count(503))
            listed = faults.get(rule["id"])
            assert (listed["matched"], listed["fired"]) == (1000, counts[-1])
            faults.remove(rule["id"])
    assert counts == [expected, expected]
    assert 50 < expected < 150


def test_fired_faults_are_counted_in_the_metrics_by_effect(imstags_server, faults):
    def injected(effect: str) -> float:
        text = httpx.get(imstags_server.base_url + "/metrics", timeout=30).text
        line = f'imstags_faults_injected_total{{effect="{effect}"}} '
        found = [row for row in text.splitlines() if row.startswith(line)]
        return float(found[0].split()[-1]) if found else 0.0

    before = injected("status")
    faults.add(operation="Querying All Image Tags", status=503, times=2)
    statuses = [unsigned(imstags_server, "GET", "/v2/p/images/tags") for _ in range(3)]
    assert statuses == [503, 503, 401]
    assert injected("status") == before + 2


def test_count_limit_stops_the_rule(imstags_server, faults):
    faults.add(operation="Querying All Image Tags", status=503, times=3)
    statuses = [unsigned(imstags_server, "GET", "/v2/p/images/tags") for _ in range(10)]
    assert statuses == [503] * 3 + [401] * 7


@pytest.mark.imstags_seed(images=[IMAGE])
def test_injected_write_failure_writes_nothing(
    imstags_server, imstags_project, imstags_ims, faults
):
    # given
    before = imstags_server.export(imstags_project.project_id)
    faults.add(operation="Adding or Deleting Image Tags in a Batch", status=503, times=1)
    body = BatchAddOrDeleteTagsRequestBody(
        action="create", tags=[ResourceTag(key="owner", value="alice")]
    )
    request = BatchAddOrDeleteTagsRequest(image_id=IMAGE["id"], body=body)
    # when
    with pytest.raises(ServerResponseException) as failure:
        imstags_ims.batch_add_or_delete_tags(request)
    # then: refused, and nothing of it stored; the same request then goes through
    assert (failure.value.status_code, failure.value.error_code) == (503, "IMG.0061")
    assert imstags_server.export(imstags_project.project_id) == before
    imstags_ims.batch_add_or_delete_tags(request)
    tags = imstags_server.export(imstags_project.project_id)["projects"][0]["images"][0]["tags"]
    assert tags == {"env": "prod", "owner": "alice"}


def test_huaweicloud_sdk_retries_an_injected_503_when_asked(imstags_project, imstags_ims, faults):
    rule = faults.add(operation="Querying All Image Tags", status=503, times=3)
    # The client's transport retries (HttpConfig.retry_times) cover 429 and broken
    # connections, not 503: without a retry policy the first 503 is the caller's.
    with pytest.raises(ServerResponseException) as failure:
        imstags_project.ims_client(retry_times=3).list_images_tags(ListImagesTagsRequest())
    assert failure.value.status_code == 503
    # The SDK's per-call retry policy retries on the condition it is given.
    invoker = imstags_ims.list_images_tags_invoker(ListImagesTagsRequest()).with_retry(
        retry_condition=lambda _response, error: getattr(error, "status_code", None) == 503,
        max_retries=3,
        backoff_strategy=BackoffStrategies.NONE,
    )
    assert invoker.invoke().tags == []
    assert faults.get(rule["id"])["fired"] == 3


def test_huaweicloud_sdk_transport_retries_an_injected_429(imstags_project, faults):
    rule = faults.add(operation="Querying All Image Tags", status=429, code="IMG.0060", times=2)
    client = imstags_project.ims_client(retry_times=3)
    assert client.list_images_tags(ListImagesTagsRequest()).tags == []
    assert faults.get(rule["id"])["fired"] == 2


def test_openstacksdk_times_out_on_an_injected_delay(imstags_project: TestProject, faults):
    connection = imstags_project.openstack(api_timeout=60)
    try:
        # The token first, with time to spare (the password hash is slow on a loaded machine);
        # then the 1 s that api_timeout would give the session from the start.
        connection.authorize()
        connection.session.timeout = 1.0
        faults.add(operation="Querying Images", delay=5, times=1)
        with pytest.raises(Exception) as failure:
            list(connection.image.images())
        assert "timed out" in str(failure.value).lower()
        assert type(failure.value).__module__.startswith(("keystoneauth1", "openstack"))
        assert list(connection.image.images()) == []  # the rule is spent
    finally:
        connection.close()


def test_dropped_connection_is_a_broken_response(imstags_server, faults):
    faults.add(operation="Querying All Image Tags", drop=True, times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(imstags_server.base_url + "/v2/p/images/tags", timeout=30)
    assert unsigned(imstags_server, "GET", "/v2/p/images/tags") == 401


def test_rules_are_listed_removed_one_by_one_and_cleared(imstags_server, faults):
    faults.add_all([{"id": "one", "status": 503}, {"id": "two", "delay": 0.01, "method": "DELETE"}])
    assert [rule["id"] for rule in faults.list()] == ["one", "two"]
    faults.remove("one")
    assert [rule["id"] for rule in faults.list()] == ["two"]
    with pytest.raises(AdminError) as missing:
        faults.remove("one")
    assert missing.value.status == 404
    faults.clear()
    assert faults.list() == []


@pytest.mark.parametrize(
    "rule",
    [
        {"status": 503, "drop": True},
        {"operation": "x"},
        {"status": 200},
        {"status": 503, "probability": 2},
        {"status": 503, "colour": "red"},
    ],
)
def test_bad_rules_are_refused(imstags_server, faults, rule):
    with pytest.raises(AdminError) as refused:
        faults.add(**rule)
    assert refused.value.status == 400
    assert faults.list() == []


def test_rules_from_a_file_at_start_are_logged_with_their_id(imstags_database_url):
    rules = [{"id": "from-file", "operation": "Querying All Image Tags", "status": 503}]
    with server(imstags_database_url, faults=rules) as emulator:
        project = f"p-{uuid.uuid4().hex[:8]}"
        assert unsigned(emulator, "GET", f"/v2/{project}/images/tags") == 503
        assert [rule["fired"] for rule in emulator.faults.list()] == [1]
        log = emulator.log()
    assert "fault rule from-file fired: 503 IMG.0061 on GET /v2/{project_id}/images/tags" in log


# Status rules: an upload held in ``saving``, or ``killed``.

UPLOAD = "Uploading an Image"
DATA = b"imstags image data " * 1000


def new_image(connection) -> str:
    image = connection.image.create_image(name="held", disk_format="raw", container_format="bare")
    return str(image.id)


def put_data(connection, image_id: str, data: bytes = DATA) -> int:
    response = connection.image.put(
        f"/images/{image_id}/file",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        raise_exc=False,
    )
    return int(response.status_code)


def image_facts(connection, image_id: str) -> tuple[str, int | None, str | None]:
    image = connection.image.get_image(image_id)
    return image.status, image.size, image.checksum


def test_hold_rule_keeps_an_uploaded_image_saving_until_the_hold_ends(
    imstags_server, imstags_openstack, faults
):
    rule = faults.add(operation=UPLOAD, hold=2, times=1)
    image_id = new_image(imstags_openstack)
    assert put_data(imstags_openstack, image_id) == 204
    assert image_facts(imstags_openstack, image_id) == ("saving", None, None)
    assert put_data(imstags_openstack, image_id) == 409  # nobody takes a held upload over
    imstags_openstack.image.wait_for_status(
        imstags_openstack.image.get_image(image_id), "active", failures=["killed"], wait=60
    )
    assert image_facts(imstags_openstack, image_id) == (
        "active",
        len(DATA),
        hashlib.md5(DATA).hexdigest(),  # noqa: S324  # Glance's checksum
    )
    assert faults.get(rule["id"])["fired"] == 1
    fired = f"fault rule {rule['id']} fired: hold 2s on PUT /v2/images/{{image_id}}/file"
    assert fired in imstags_server.log()
    other = new_image(imstags_openstack)  # the rule is spent: the next upload is as usual
    assert put_data(imstags_openstack, other) == 204
    assert image_facts(imstags_openstack, other)[0] == "active"


# openstacksdk opens the file itself and leaves closing it to the garbage collector.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_openstacksdk_create_image_times_out_on_a_long_hold(imstags_openstack, faults, tmp_path):
    faults.add(operation=UPLOAD, hold=600, times=1)
    path = tmp_path / "disk.raw"
    path.write_bytes(DATA)
    with pytest.raises(ResourceTimeout):
        imstags_openstack.create_image(
            "waited", filename=str(path), disk_format="raw", container_format="bare",
            wait=True, timeout=2, use_import=False,
        )  # fmt: skip
    assert list(imstags_openstack.image.images()) == []  # openstacksdk deletes what timed out


def test_kill_rule_leaves_the_image_killed_without_data(imstags_server, imstags_openstack, faults):
    rule = faults.add(operation=UPLOAD, kill=True, times=1)
    image_id = new_image(imstags_openstack)
    assert put_data(imstags_openstack, image_id) == 204
    assert image_facts(imstags_openstack, image_id) == ("killed", None, None)
    with pytest.raises(ResourceFailure):
        imstags_openstack.image.wait_for_status(
            imstags_openstack.image.get_image(image_id), "active", failures=["killed"], wait=30
        )
    download = imstags_openstack.image.get(f"/images/{image_id}/file", raise_exc=False)
    assert (download.status_code, download.content) == (204, b"")
    assert put_data(imstags_openstack, image_id) == 409  # killed is final
    assert image_facts(imstags_openstack, image_id) == ("killed", None, None)
    assert faults.get(rule["id"])["fired"] == 1
    fired = f"fault rule {rule['id']} fired: kill on PUT /v2/images/{{image_id}}/file"
    assert fired in imstags_server.log()
    imstags_openstack.image.delete_image(image_id)
    assert list(imstags_openstack.image.images()) == []


def test_status_rules_match_uploads_of_their_project_only(
    imstags_project: TestProject, imstags_openstack, faults
):
    elsewhere = faults.add(kill=True, project="another-project")
    anywhere = faults.add(kill=True, times=1)
    assert list(imstags_openstack.image.images()) == []  # not an upload: no rule draws
    assert faults.get(anywhere["id"])["matched"] == 0
    first, second = new_image(imstags_openstack), new_image(imstags_openstack)
    assert put_data(imstags_openstack, first) == 204
    assert put_data(imstags_openstack, second) == 204
    assert image_facts(imstags_openstack, first)[0] == "killed"
    assert image_facts(imstags_openstack, second)[0] == "active"  # times=1
    assert faults.get(elsewhere["id"])["matched"] == 0
    assert faults.get(anywhere["id"])["fired"] == 1


@pytest.mark.parametrize(
    "rule",
    [{"hold": 1, "kill": True}, {"kill": True, "status": 503}, {"hold": 2, "drop": True},
     {"hold": -1}, {"kill": "yes"}],
)  # fmt: skip
def test_bad_status_rules_are_refused(imstags_server, faults, rule):
    with pytest.raises(AdminError) as refused:
        faults.add(**rule)
    assert refused.value.status == 400
    assert faults.list() == []
