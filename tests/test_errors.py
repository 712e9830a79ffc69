"""One error shape everywhere, request ids on every response, no tracebacks to clients."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from imstags.api.app import create_app
from imstags.services.container import build_services
from tests.support.signing import sdk_signed_headers


def signed_post(server, credential, path: str, body: bytes) -> httpx.Response:
    url = server.base_url + path
    headers = sdk_signed_headers("POST", url, credential.access, credential.secret, body=body)
    return httpx.post(url, content=body, headers=headers)


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]["message"]


def test_unknown_route_returns_404_error_body_with_request_id(server):
    response = httpx.get(server.base_url + "/no/such/route")
    assert_error(response, 404, "IMG.0121")
    assert response.headers["x-request-id"].startswith("req-")


def test_request_ids_differ_between_requests(server):
    first = httpx.get(server.base_url + "/no/such/route").headers["x-request-id"]
    second = httpx.get(server.base_url + "/no/such/route").headers["x-request-id"]
    assert first != second


def test_wrong_method_returns_405_error_body(server, credential):
    url = f"{server.base_url}/v2/{credential.project_id}/images/tags"
    headers = sdk_signed_headers("DELETE", url, credential.access, credential.secret)
    assert_error(httpx.delete(url, headers=headers), 405, "IMG.0105")


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        (b"{not json", "IMG.0001", "JSON"),
        (b"", "IMG.0007", "empty"),
        (b'{"action": "create"}', "IMG.0001", "tags"),
        (b'{"tags": [{"key": "k", "value": "v"}]}', "IMG.0001", "action"),
        (b'{"action": "create", "tags": "k=v"}', "IMG.0001", "tags"),
        (b'{"action": "create", "tags": [{"key": 5, "value": "v"}]}', "IMG.0001", "key"),
        (b'{"action": 1, "tags": [{"key": "k", "value": "v"}]}', "IMG.0001", "action"),
        (b"[]", "IMG.0001", ""),
    ],
)
def test_batch_tags_action_malformed_body_returns_400(server, credential, body, code, fragment):
    path = f"/v2/{credential.project_id}/images/00000000-0000-0000-0000-000000000000/tags/action"
    message = assert_error(signed_post(server, credential, path, body), 400, code)
    assert fragment.lower() in message.lower()


async def get_in_process(app, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


def test_unexpected_exception_returns_500_without_traceback(settings, db, caplog):
    app = create_app(settings, build_services(settings, db))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    with caplog.at_level(logging.ERROR, logger="imstags.api"):
        response = asyncio.run(get_in_process(app, "/boom"))
    message = assert_error(response, 500, "IMG.0061")
    request_id = response.headers["x-request-id"]
    assert request_id in message
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None
