"""Hostile input gets a clear 4xx with the error body before it reaches a handler or the
database: oversized bodies, paths, queries and headers, NUL bytes, non-UTF-8, deep JSON."""

from __future__ import annotations

import socket
import uuid
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.http import assert_error, signed_request

MIB = 1024 * 1024


def raw_exchange(base_url: str, head: bytes, body: bytes = b"") -> bytes:
    """Send bytes on a fresh connection and read until the server closes or answers fully."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=15) as sock:
        sock.sendall(head + body)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            received += chunk
            if b"\r\n\r\n" in received and received.rstrip().endswith(b"}"):
                break
        return received


def test_create_image_declared_body_over_limit_returns_413_without_reading_it(server):
    host = urlsplit(server.base_url).netloc
    head = (
        f"POST /v2/images HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {64 * MIB}\r\n\r\n"
    ).encode()
    # Only the head is sent: the answer must come without the 64 MiB the header announces.
    answer = raw_exchange(server.base_url, head)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"413", answer[:300]
    assert b'"IMG.0001"' in rest


def test_create_image_chunked_body_over_limit_returns_413(server):
    def chunks():
        for _ in range(3):
            yield b"[" * (MIB // 2)

    response = httpx.post(
        server.base_url + "/v2/images",
        content=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert_error(response, 413, "IMG.0001")


def test_batch_tags_action_body_just_under_limit_is_parsed_not_refused(server, credential):
    padding = "x" * (MIB - 200)
    body = f'{{"action": "create", "tags": [], "pad": "{padding}"}}'.encode()
    path = f"/v2/{credential.project_id}/images/{uuid.uuid4()}/tags/action"
    response = signed_request(server.base_url, credential, "POST", path, body=body)
    assert_error(response, 400, "IMG.0001")  # the empty tags list, not the size


def test_list_images_tags_query_string_over_limit_returns_414(server, credential):
    path = f"/v2/{credential.project_id}/images/tags"
    response = httpx.get(server.base_url + path + "?q=" + "a" * 9000)
    assert_error(response, 414, "IMG.0001")


def test_list_images_tags_huge_header_block_returns_431(server, credential):
    headers = {f"X-Filler-{i}": "v" * 1000 for i in range(40)}
    url = server.base_url + f"/v2/{credential.project_id}/images/tags"
    response = httpx.get(url, headers=headers)
    assert_error(response, 431, "IMG.0001")


@pytest.mark.parametrize(
    "path",
    [
        "/v2/images/%00",
        "/v2/images/abc%00def",
        "/v2/images/%ff%fe",
        "/v2/{project}/images/%c3%28/tags/action",
    ],
)
def test_show_image_nul_or_invalid_utf8_in_path_returns_400(server, credential, path):
    url = server.base_url + path.format(project=credential.project_id)
    response = httpx.get(url)
    assert_error(response, 400, "IMG.0001")


@pytest.mark.parametrize("query", ["name=a%00b", "a%00=1", "name=%ff"])
def test_list_images_tags_nul_or_invalid_utf8_in_query_returns_400(server, credential, query):
    url = f"{server.base_url}/v2/{credential.project_id}/images/tags?{query}"
    assert_error(httpx.get(url), 400, "IMG.0001")


def test_create_image_nul_escape_in_json_returns_400_and_writes_nothing(server, credential):
    body = b'{"name": "evil\\u0000name", "tags": ["a"]}'
    response = signed_request(server.base_url, credential, "POST", "/v2/images", body=body)
    assert_error(response, 400, "IMG.0001")
    tags = signed_request(
        server.base_url, credential, "GET", f"/v2/{credential.project_id}/images/tags"
    )
    assert tags.json() == {"tags": []}


def test_batch_tags_action_nul_escape_in_tag_returns_400(server, credential):
    body = b'{"action": "create", "tags": [{"key": "k\\u0000", "value": "v"}]}'
    path = f"/v2/{credential.project_id}/images/{uuid.uuid4()}/tags/action"
    response = signed_request(server.base_url, credential, "POST", path, body=body)
    assert_error(response, 400, "IMG.0001")


def test_create_image_deeply_nested_json_returns_400(server, credential):
    body = b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = signed_request(server.base_url, credential, "POST", "/v2/images", body=body)
    assert_error(response, 400)


def test_create_image_moderately_nested_json_returns_400(server, credential):
    body = b'{"name": "n", "x": ' + b'{"a": ' * 500 + b"1" + b"}" * 500 + b"}"
    response = signed_request(server.base_url, credential, "POST", "/v2/images", body=body)
    assert_error(response, 400)


def test_create_image_non_utf8_body_returns_400(server, credential):
    body = b'{"name": "\xff\xfe\xfa"}'
    response = signed_request(server.base_url, credential, "POST", "/v2/images", body=body)
    assert_error(response, 400, "IMG.0001")


def test_create_image_invalid_content_length_returns_400(server):
    host = urlsplit(server.base_url).netloc
    head = f"POST /v2/images HTTP/1.1\r\nHost: {host}\r\nContent-Length: -5\r\n\r\n".encode()
    answer = raw_exchange(server.base_url, head)
    assert answer.split(b"\r\n", 1)[0].split()[1] == b"400", answer[:300]


@pytest.mark.parametrize(
    "image_id",
    ["not-a-uuid", "x" * 300, "'; DROP TABLE images; --", "%E2%98%83", "..%2F..%2Fetc"],
)
def test_show_image_malformed_id_returns_404(server, credential, image_id):
    response = signed_request(server.base_url, credential, "GET", f"/v2/images/{image_id}")
    assert_error(response, 404)


@pytest.mark.parametrize("image_id", ["not-a-uuid", "y" * 300, "%E2%98%83"])
def test_batch_tags_action_malformed_image_id_returns_404(server, credential, image_id):
    body = b'{"action": "create", "tags": [{"key": "k", "value": "v"}]}'
    path = f"/v2/{credential.project_id}/images/{image_id}/tags/action"
    response = signed_request(server.base_url, credential, "POST", path, body=body)
    assert_error(response, 404)
