"""Issue 11, items 1 to 7: the attacks on authentication, each sent over real HTTP (or, where
the defect is not in the HTTP path, against the service objects), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import re
import uuid

import httpx
import pytest

from imstags.api.app import create_app
from imstags.api.openapi import api_routes, requires_credentials
from tests.support.http import assert_error, signed_request
from tests.support.signing import sdk_signed_headers

UNAUTHORIZED = "IMG.0030"
PATH_PARAM = re.compile(r"\{([^}]+)\}")


def send(
    method: str, url: str, headers: dict[str, str], body: bytes = b"", **kwargs: object
) -> httpx.Response:
    return httpx.request(method, url, headers=headers, content=body, timeout=30, **kwargs)  # type: ignore[arg-type]


def image_tags(server, credential, image_id: str) -> list[str]:
    response = signed_request(server.base_url, credential, "GET", f"/v2/images/{image_id}")
    assert response.status_code == 200, response.text
    return sorted(response.json()["tags"])


@pytest.fixture
def tagged_image(server, credential) -> str:
    body = json.dumps({"name": "victim", "tags": ["keep", "env=prod"]}).encode()
    response = signed_request(server.base_url, credential, "POST", "/v2/images", body=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


# --- item 1: the signature binds the body ----------------------------------------------------


def captured(server, credential, method: str, path: str, body: bytes) -> dict[str, str]:
    """The headers of a request someone signed and sent (seen in a proxy log, a HAR file)."""
    return sdk_signed_headers(
        method, server.base_url + path, credential.access, credential.secret, body=body
    )


def test_captured_create_tag_replayed_as_delete_with_claimed_hash_is_401(
    server, credential, tagged_image
):
    path = f"/v2/{credential.project_id}/images/{tagged_image}/tags/action"
    original = json.dumps({"action": "create", "tags": [{"key": "a", "value": "b"}]}).encode()
    headers = captured(server, credential, "POST", path, original)
    swapped = json.dumps({"action": "delete", "tags": [{"key": "keep"}]}).encode()
    # The attacker claims the original body's hash for the new body.
    headers["X-Sdk-Content-Sha256"] = hashlib.sha256(original).hexdigest()
    response = send("POST", server.base_url + path, headers, swapped)
    assert_error(response, 401, UNAUTHORIZED)
    assert image_tags(server, credential, tagged_image) == ["env=prod", "keep"]


def test_captured_image_create_with_another_body_is_401_and_creates_nothing(server, credential):
    original = json.dumps({"name": "innocent"}).encode()
    headers = captured(server, credential, "POST", "/v2/images", original)
    name = f"attacker-{uuid.uuid4().hex}"
    swapped = json.dumps({"name": name, "tags": ["owned"], "protected": True}).encode()
    for claimed in (hashlib.sha256(original).hexdigest(), "UNSIGNED-PAYLOAD", None):
        if claimed is not None:
            headers["X-Sdk-Content-Sha256"] = claimed
        response = send("POST", server.base_url + "/v2/images", headers, swapped)
        assert_error(response, 401, UNAUTHORIZED)
    listing = signed_request(server.base_url, credential, "GET", "/v2/images")
    assert name not in {image["name"] for image in listing.json()["images"]}


@pytest.fixture(scope="module")
def write_routes(settings):
    app = create_app(settings)
    return [
        (method, route.path_format)
        for route in api_routes(app)
        if requires_credentials(route)
        for method in sorted(route.methods)
        if method in {"POST", "PUT", "PATCH", "DELETE"}
    ]


def test_every_write_route_refuses_a_swapped_body_and_changes_nothing(
    server, credential, tagged_image, write_routes
):
    """Whatever the route, a body that is not the signed one is 401 before anything runs,
    with or without a claimed hash of the signed body."""
    values = {"project_id": credential.project_id, "image_id": tagged_image}
    original = json.dumps({"name": "x"}).encode()
    swapped = json.dumps({"action": "delete", "tags": [{"key": "keep"}]}).encode()
    checked = 0
    for method, template in write_routes:
        path = PATH_PARAM.sub(lambda m: values.get(m.group(1), "keep"), template)
        for claimed in (hashlib.sha256(original).hexdigest(), None):
            headers = captured(server, credential, method, path, original)
            if claimed:
                headers["X-Sdk-Content-Sha256"] = claimed
            response = send(method, server.base_url + path, headers, swapped)
            assert response.status_code == 401, (method, template, response.text)
        checked += 1
    assert checked >= 8
    assert image_tags(server, credential, tagged_image) == ["env=prod", "keep"]


def test_content_sha256_equal_to_the_body_hash_is_accepted(server, credential, tagged_image):
    path = f"/v2/{credential.project_id}/images/{tagged_image}/tags/action"
    body = json.dumps({"action": "create", "tags": [{"key": "a", "value": "b"}]}).encode()
    digest = hashlib.sha256(body).hexdigest()
    headers = sdk_signed_headers(
        "POST",
        server.base_url + path,
        credential.access,
        credential.secret,
        body=body,
        headers={"X-Sdk-Content-Sha256": digest},
    )
    response = send("POST", server.base_url + path, headers, body)
    assert response.status_code == 204, response.text
    assert image_tags(server, credential, tagged_image) == ["a=b", "env=prod", "keep"]


def test_signed_unsigned_payload_is_refused_on_json_routes(server, credential, tagged_image):
    """What the SDK's signer sends for a body that is not JSON: the header says the body is
    not signed, and the header itself is signed. Refused (the image data upload may allow it)."""
    path = f"/v2/{credential.project_id}/images/{tagged_image}/tags/action"
    body = json.dumps({"action": "delete", "tags": [{"key": "keep"}]}).encode()
    headers = sdk_signed_headers(
        "POST",
        server.base_url + path,
        credential.access,
        credential.secret,
        body=body,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert headers["X-Sdk-Content-Sha256"] == "UNSIGNED-PAYLOAD"
    response = send("POST", server.base_url + path, headers, body)
    assert "UNSIGNED-PAYLOAD" in assert_error(response, 401, UNAUTHORIZED)
    assert image_tags(server, credential, tagged_image) == ["env=prod", "keep"]
