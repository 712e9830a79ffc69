"""Issue 11, bad input (items 8-12), over real HTTP against the real server.

Lone surrogates are refused at the edge; tag text is NFC without controls or invisible format
characters on every write path; IMS query bodies are strictly typed; image ids have one
spelling; every tag that can be written can be deleted and queried through every tag API.
"""

from __future__ import annotations

import json
import unicodedata
import uuid
from urllib.parse import quote

import httpx
import pytest
from huaweicloudsdkims.v2 import (
    AddImageTagRequest,
    AddImageTagRequestBody,
    BatchAddOrDeleteTagsRequest,
    BatchAddOrDeleteTagsRequestBody,
    BatchDeleteTagsRequest,
    BatchDeleteTagsRequestBody,
    DeleteImageTagRequest,
    ImsClient,
    ListImageByTagsRequest,
    ListImageByTagsRequestBody,
    ResourceTag,
    TagKeyValue,
    Tags,
)
from sqlalchemy import select

from imstags.storage.models import ImageTag
from tests.support.aggregate import assert_aggregate_exact
from tests.support.http import assert_error, signed_request
from tests.support.signing import sdk_signed_headers
from tests.support.tagging import create_image, refused, summary, tags_of
from tests.test_bulk_import import import_file, line, write_lines


def send_json(server, credential, method: str, path: str, text: str, media="application/json"):
    """Send ``text`` byte for byte as the JSON body (escapes as written, not re-encoded)."""
    return signed_request(
        server.base_url,
        credential,
        method,
        path,
        body=text.encode(),
        headers={"Content-Type": media},
    )


# --- item 8: lone surrogates ---------------------------------------------------------------

MARK = "@LONE@"  # replaced by a lone surrogate escape in the JSON text


def with_lone_surrogate(body: object) -> str:
    return json.dumps(body).replace(MARK, r"\ud800")


def surrogate_requests(project: str, image_id: str) -> list[tuple[str, str, str, str]]:
    """(method, path, JSON text with a lone surrogate escape, media type) for each family."""
    json_type, patch_type = "application/json", "application/openstack-images-v2.1-json-patch"
    rename = [{"op": "replace", "path": "/name", "value": MARK}]
    requests: list[tuple[str, str, object, str]] = [
        ("POST", f"/v2/{project}/images/{image_id}/tags",
         {"tag": {"key": "k" + MARK, "value": "v"}}, json_type),
        ("POST", f"/v2/{project}/images/{image_id}/tags/action",
         {"action": "create", "tags": [{"key": "k", "value": MARK}]}, json_type),
        ("POST", f"/v2/{project}/images/{image_id}/tags/action",
         {"action": "delete", "tags": [{"key": MARK}]}, json_type),
        ("PUT", "/v1/cloudimages/tags",
         {"image_id": image_id, "image_tag": {"key": MARK, "value": ""}}, json_type),
        ("DELETE", f"/v1/{project}/cloudimages/{image_id}/tags/delete",
         {"tags": [{"key": MARK}]}, json_type),
        ("POST", f"/v2/{project}/images/resource_instances/action",
         {"action": "count", "tags": [{"key": MARK, "values": []}]}, json_type),
        ("POST", "/v2/images", {"name": "n", "tags": ["a" + MARK]}, json_type),
        ("POST", "/v2/images", {"name": "n", MARK: "x"}, json_type),
        ("PATCH", f"/v2/images/{image_id}", rename, patch_type),
        ("PATCH", f"/v2/cloudimages/{image_id}", rename, json_type),
    ]  # fmt: skip
    return [(m, path, with_lone_surrogate(body), media) for m, path, body, media in requests]


def test_json_bodies_with_lone_surrogate_are_400_on_every_family(
    server, credential, ims, db, project_id
):
    image_id = create_image(ims, "keep=1")
    for method, path, text, media in surrogate_requests(project_id, image_id):
        response = send_json(server, credential, method, path, text, media)
        message = assert_error(response, 400, "IMG.0001")
        assert "surrogate" in message, (method, path, message)
    assert tags_of(ims, image_id) == {"keep": "1"}
    assert_aggregate_exact(db, project_id)


def test_json_body_with_surrogate_pair_or_escaped_backslash_is_accepted(
    server, credential, ims, project_id
):
    image_id = create_image(ims)
    path = f"/v2/{project_id}/images/{image_id}/tags/action"
    text = r'{"action": "create", "tags": [{"key": "smile", "value": "\ud83d\ude00"},' \
        r' {"key": "slash", "value": "\\ud800"}]}'  # fmt: skip
    response = send_json(server, credential, "POST", path, text)
    assert response.status_code == 204, response.text
    assert tags_of(ims, image_id) == {"smile": "\U0001f600", "slash": "\\ud800"}


@pytest.mark.parametrize(
    "path_and_query",
    [
        "/v2/{project}/images/%ED%A0%80/tags",
        "/v2/images?tag=%ED%A0%80",
        "/v1/cloudimages/tags?tag=a%ED%B0%80",
    ],
)
def test_encoded_surrogates_in_path_or_query_are_400(
    server, credential, project_id, path_and_query
):
    path, _, query = path_and_query.format(project=project_id).partition("?")
    url = server.base_url + path
    pairs = [tuple(item.split("=", 1)) for item in query.split("&")] if query else None
    headers = sdk_signed_headers("GET", url, credential.access, credential.secret, query=pairs)
    full = url + ("?" + query if query else "")
    response = httpx.get(full, headers=headers, timeout=30)
    assert_error(response, 400, "IMG.0001")


# --- item 9: tag text ----------------------------------------------------------------------

REFUSED_TEXT = {
    "C1 control (NEL)": "a\u0085b",
    "C1 control (CSI)": "a\u009bb",
    "DEL": "a\u007fb",
    "bidi override RLO": "abc\u202e",
    "bidi isolate FSI": "\u2068abc",
    "zero-width space": "ab\u200bc",
    "zero-width joiner": "a\u200db",
    "byte-order mark": "\ufeffabc",
    "soft hyphen": "ab\u00adc",
    "line separator": "a\u2028b",
}


@pytest.mark.parametrize("text", REFUSED_TEXT.values(), ids=REFUSED_TEXT.keys())
def test_tag_writes_refuse_control_and_invisible_characters_on_every_path(
    server, credential, ims, db, project_id, text
):
    image_id = create_image(ims)
    writes = [
        ("POST", f"/v2/{project_id}/images/{image_id}/tags",
         {"tag": {"key": text, "value": "v"}}),
        ("POST", f"/v2/{project_id}/images/{image_id}/tags",
         {"tag": {"key": "k", "value": text}}),
        ("POST", f"/v2/{project_id}/images/{image_id}/tags/action",
         {"action": "create", "tags": [{"key": text, "value": "v"}]}),
        ("PUT", "/v1/cloudimages/tags",
         {"image_id": image_id, "image_tag": {"key": "k", "value": text}}),
        ("POST", "/v2/images", {"name": "n", "tags": [text]}),
        ("POST", "/v2/images", {"name": "n", "tags": ["k=" + text]}),
    ]  # fmt: skip
    for method, path, body in writes:
        response = signed_request(
            server.base_url, credential, method, path, body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        assert_error(response, 400, "IMG.0115")
    native = signed_request(
        server.base_url, credential, "PUT", f"/v2/images/{image_id}/tags/{quote(text, safe='')}"
    )
    assert native.status_code == 400, native.text
    assert tags_of(ims, image_id) == {}
    assert summary(ims) == {}
    assert_aggregate_exact(db, project_id)


def test_nfd_and_nfc_spellings_are_one_key_stored_as_nfc(server, credential, ims, db, project_id):
    nfc, nfd = "caf\u00e9", unicodedata.normalize("NFD", "caf\u00e9")
    assert nfc != nfd
    image_id = create_image(ims)
    path = f"/v2/{project_id}/images/{image_id}/tags"
    for key, value in ((nfd, nfd), (nfc, "x")):
        body = json.dumps({"tag": {"key": key, "value": value}}).encode()
        response = signed_request(
            server.base_url, credential, "POST", path, body=body,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        assert response.status_code == 204, response.text
    assert tags_of(ims, image_id) == {nfc: "x"}
    assert summary(ims) == {nfc: ["x"]}
    # The NFD spelling names the stored tag for deletion too.
    ims.delete_image_tag(DeleteImageTagRequest(image_id=image_id, key=nfd))
    assert tags_of(ims, image_id) == {}
    native_id = create_image(ims, nfd + "=" + nfd)
    assert tags_of(ims, native_id) == {nfc: nfc}
    assert_aggregate_exact(db, project_id)


def test_images_import_applies_the_tag_text_rule(settings, db, tmp_path, project_id):
    nfd = unicodedata.normalize("NFD", "caf\u00e9")
    good = line(project_id, {nfd: "x"})
    done = import_file(settings, write_lines(tmp_path / "ok.jsonl", [good]))
    assert done.returncode == 0, done.stderr.decode()
    with db.read() as session:
        keys = session.scalars(select(ImageTag.key).where(ImageTag.project_id == project_id)).all()
    assert keys == ["caf\u00e9"]
    for text in ("a\u202eb", "\ufeffa", "a\u0085b"):
        bad = line(project_id, {"k": text})
        done = import_file(settings, write_lines(tmp_path / "bad.jsonl", [bad]))
        assert done.returncode == 1, done.stderr.decode()
        assert "control or invisible" in done.stderr.decode()
    assert_aggregate_exact(db, project_id)


# --- item 10: strict types -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"action": "count", "without_any_tag": "yes"},
        {"action": "count", "without_any_tag": 1},
        {"action": "count", "without_any_tag": "true"},
        {"action": "count", "tags": [{"key": 1, "values": []}]},
        {"action": "count", "tags": [{"key": "k", "values": [1]}]},
        {"action": "filter", "matches": [{"key": "resource_name", "value": 5}]},
        {"action": 1},
    ],
)
def test_query_by_tag_wrong_types_are_400(server, credential, ims, project_id, body):
    create_image(ims, "env=prod")
    response = signed_request(
        server.base_url, credential, "POST", f"/v2/{project_id}/images/resource_instances/action",
        body=json.dumps(body).encode(), headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert_error(response, 400, "IMG.0001")


@pytest.mark.parametrize(
    "route, body",
    [
        ("tags", {"tag": {"key": "k", "value": 1}}),
        ("tags", {"tag": {"key": True, "value": "v"}}),
        ("tags/action", {"action": "create", "tags": [{"key": "k", "value": 1.5}]}),
        ("tags/action", {"action": "delete", "tags": [{"key": "k", "value": False}]}),
    ],
)
def test_ims_tag_bodies_wrong_types_are_400(server, credential, ims, project_id, route, body):
    image_id = create_image(ims)
    response = signed_request(
        server.base_url, credential, "POST", f"/v2/{project_id}/images/{image_id}/{route}",
        body=json.dumps(body).encode(), headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert_error(response, 400, "IMG.0001")
    assert tags_of(ims, image_id) == {}


def test_query_by_tag_real_booleans_still_work(server, credential, ims, project_id):
    create_image(ims, "env=prod")
    create_image(ims)
    response = signed_request(
        server.base_url, credential, "POST", f"/v2/{project_id}/images/resource_instances/action",
        body=b'{"action": "count", "without_any_tag": true}',
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json() == {"total_count": 1}


# --- item 11: image ids --------------------------------------------------------------------


def id_spellings(canonical: str) -> list[str]:
    return [
        canonical.upper(),
        canonical.replace("-", ""),
        "urn:uuid:" + canonical,
        "{" + canonical + "}",
        canonical[:9] + canonical[9:].upper(),
    ]


def test_create_image_refuses_non_canonical_ids(server, credential, ims, project_id):
    canonical = str(uuid.uuid4())
    for spelling in id_spellings(canonical):
        body = json.dumps({"name": "n", "id": spelling}).encode()
        response = signed_request(
            server.base_url, credential, "POST", "/v2/images", body=body,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        message = assert_error(response, 400, "IMG.0001")
        assert "lower case" in message
    body = json.dumps({"name": "n", "id": canonical}).encode()
    created = signed_request(
        server.base_url, credential, "POST", "/v2/images", body=body,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.json()["id"] == canonical


def test_non_canonical_id_names_no_image_on_any_route(server, credential, ims, project_id):
    canonical = create_image(ims, "env=prod")
    for spelling in id_spellings(canonical):
        for method, path in (
            ("GET", f"/v2/images/{spelling}"),
            ("GET", f"/v2/{project_id}/images/{spelling}/tags"),
            ("DELETE", f"/v2/{project_id}/images/{spelling}/tags/env"),
            ("PUT", f"/v2/images/{spelling}/tags/x"),
            ("DELETE", f"/v2/images/{spelling}"),
        ):
            response = signed_request(server.base_url, credential, method, path)
            assert response.status_code in (400, 404), (method, path, response.text)
        body = json.dumps({"image_id": spelling, "tag": "a.b"}).encode()
        response = signed_request(
            server.base_url, credential, "PUT", "/v1/cloudimages/tags", body=body,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        assert response.status_code in (400, 404), response.text
    assert tags_of(ims, canonical) == {"env": "prod"}


def test_images_import_refuses_non_canonical_ids(settings, db, tmp_path, project_id):
    for spelling in id_spellings(str(uuid.uuid4())):
        done = import_file(
            settings, write_lines(tmp_path / "i.jsonl", [line(project_id, {}, spelling)])
        )
        assert done.returncode == 1, done.stderr.decode()
        assert "lower case" in done.stderr.decode()


# --- item 12: every written tag can be deleted and queried ---------------------------------


def long_native_tags() -> tuple[str, str, str]:
    """A key-only tag of 255 characters, and a key of 200 with a value of 54 (255 in all)."""
    key_only = "k" * 255
    key, value = "q" * 200, "v" * 54
    return key_only, key, value


def test_longest_native_tags_can_be_queried_and_deleted_through_ims_apis(
    ims: ImsClient, db, project_id
):
    key_only, key, value = long_native_tags()
    image_id = create_image(ims, key_only, f"{key}={value}")
    assert tags_of(ims, image_id) == {key_only: "", key: value}

    for cond in ([Tags(key=key_only, values=[])], [Tags(key=key, values=[value])]):
        body = ListImageByTagsRequestBody(action="filter", tags=cond)
        found = ims.list_image_by_tags(ListImageByTagsRequest(body=body))
        assert [r.resource_id for r in found.resources] == [image_id]

    delete = BatchAddOrDeleteTagsRequestBody(
        action="delete", tags=[TagKeyValue(key=key_only, value="")]
    )
    ims.batch_add_or_delete_tags(BatchAddOrDeleteTagsRequest(image_id=image_id, body=delete))
    assert tags_of(ims, image_id) == {key: value}

    v1 = BatchDeleteTagsRequestBody(tags=[ResourceTag(key=key, value=value)])
    ims.batch_delete_tags(BatchDeleteTagsRequest(image_id=image_id, body=v1))
    assert tags_of(ims, image_id) == {}

    again = create_image(ims, key_only)
    ims.delete_image_tag(DeleteImageTagRequest(image_id=again, key=key_only))
    assert tags_of(ims, again) == {}
    assert_aggregate_exact(db, project_id)


def test_longest_native_tag_can_be_deleted_through_native_api(server, credential, ims, project_id):
    key_only, key, value = long_native_tags()
    image_id = create_image(ims, key_only, f"{key}={value}")
    for tag in (key_only, f"{key}={value}"):
        response = signed_request(
            server.base_url, credential, "DELETE", f"/v2/images/{image_id}/tags/{tag}"
        )
        assert response.status_code == 204, response.text
    assert tags_of(ims, image_id) == {}


def test_sdk_add_tag_with_lone_surrogate_is_400(ims: ImsClient, db, project_id):
    """The official client sends the lone surrogate as a JSON escape; it must not reach the
    database (it answered 500 on both databases)."""
    image_id = create_image(ims)
    for key, value in (("k\ud800", "v"), ("k", "\udfff")):
        body = AddImageTagRequestBody(tag=TagKeyValue(key=key, value=value))
        request = AddImageTagRequest(image_id=image_id, body=body)
        refused(lambda request=request: ims.add_image_tag(request), 400, "IMG.0001")
    assert tags_of(ims, image_id) == {}
    assert_aggregate_exact(db, project_id)


def test_create_with_another_projects_id_is_refused_while_reading_it_is_404(
    server, ims, make_credential
):
    """What docs/decisions.md says "already exists" reveals: that the id exists, no more."""
    taken = create_image(ims, "secret=1")
    other = make_credential(uuid.uuid4().hex)
    read = signed_request(server.base_url, other, "GET", f"/v2/images/{taken}")
    assert_error(read, 404)
    body = json.dumps({"name": "n", "id": taken}).encode()
    created = signed_request(
        server.base_url, other, "POST", "/v2/images", body=body,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    message = assert_error(created, 400, "IMG.0035")
    assert "secret" not in message
