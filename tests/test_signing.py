"""AK/SK signatures: requests signed by the SDK's own signer, tampered with in every way a
request can be, against the real server; and the verifier's canonical forms, unit-tested
against the SDK for awkward query strings and paths."""

from __future__ import annotations

import asyncio
import types
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from huaweicloudsdkims.v2 import ListImagesTagsRequest

from imstags.domain import signing
from imstags.domain.credentials import IssuedCredential
from imstags.errors import Unauthorized
from tests.support.clients import ims_client
from tests.support.http import assert_error, encode_query, signed_request
from tests.support.signing import sdk_signed_headers

UNAUTHORIZED = "IMG.0030"
FORBIDDEN = "IMG.0026"


def tags_path(project: str) -> str:
    return f"/v2/{project}/images/tags"


def action_path(project: str, image_id: str) -> str:
    return f"/v2/{project}/images/{image_id}/tags/action"


def send(method: str, url: str, headers: dict[str, str], body: bytes = b"") -> httpx.Response:
    return httpx.request(method, url, headers=headers, content=body, timeout=30)


# --- over real HTTP -------------------------------------------------------------------------


def test_list_images_tags_correctly_signed_returns_200(server, credential):
    response = signed_request(server.base_url, credential, "GET", tags_path(credential.project_id))
    assert response.status_code == 200
    assert response.json() == {"tags": []}


def test_list_images_tags_wrong_secret_sdk_client_reports_401(server, credential):
    forged = IssuedCredential(credential.access, "W" * 40, credential.project_id)
    with pytest.raises(ClientRequestException) as raised:
        ims_client(server.base_url, forged).list_images_tags(ListImagesTagsRequest())
    assert raised.value.status_code == 401
    assert raised.value.error_code == UNAUTHORIZED


def test_list_images_tags_wrong_secret_returns_401(server, credential):
    forged = IssuedCredential(credential.access, credential.secret[::-1], credential.project_id)
    response = signed_request(server.base_url, forged, "GET", tags_path(credential.project_id))
    assert "signature" in assert_error(response, 401, UNAUTHORIZED)


def test_show_image_tampered_path_returns_401(server, credential):
    signed_for = f"{server.base_url}/v2/images/{uuid.uuid4()}"
    headers = sdk_signed_headers("GET", signed_for, credential.access, credential.secret)
    response = send("GET", f"{server.base_url}/v2/images/{uuid.uuid4()}", headers)
    assert_error(response, 401, UNAUTHORIZED)


def test_list_images_tags_tampered_query_returns_401(server, credential):
    url = server.base_url + tags_path(credential.project_id)
    headers = sdk_signed_headers(
        "GET", url, credential.access, credential.secret, query=[("limit", 1)]
    )
    response = send("GET", url + "?limit=2", headers)
    assert_error(response, 401, UNAUTHORIZED)


def test_list_images_tags_query_added_after_signing_returns_401(server, credential):
    url = server.base_url + tags_path(credential.project_id)
    headers = sdk_signed_headers("GET", url, credential.access, credential.secret)
    assert_error(send("GET", url + "?extra=1", headers), 401, UNAUTHORIZED)


def test_batch_tags_action_tampered_body_returns_401(server, credential):
    url = server.base_url + action_path(credential.project_id, str(uuid.uuid4()))
    signed_body = b'{"action": "delete", "tags": [{"key": "a"}]}'
    sent_body = b'{"action": "delete", "tags": [{"key": "b"}]}'
    headers = sdk_signed_headers(
        "POST", url, credential.access, credential.secret, body=signed_body
    )
    assert_error(send("POST", url, headers, sent_body), 401, UNAUTHORIZED)


def test_batch_tags_action_tampered_method_returns_401(server, credential):
    url = server.base_url + f"/v2/images/{uuid.uuid4()}"
    headers = sdk_signed_headers("GET", url, credential.access, credential.secret)
    assert_error(send("DELETE", url, headers), 401, UNAUTHORIZED)


@pytest.mark.parametrize("offset_minutes", [-16, 16, -24 * 60, 365 * 24 * 60])
def test_list_images_tags_date_outside_window_returns_401(server, credential, offset_minutes):
    url = server.base_url + tags_path(credential.project_id)
    date = datetime.now(UTC) + timedelta(minutes=offset_minutes)
    headers = sdk_signed_headers("GET", url, credential.access, credential.secret, date=date)
    message = assert_error(send("GET", url, headers), 401, UNAUTHORIZED)
    assert "window" in message


@pytest.mark.parametrize("offset_minutes", [-14, 14])
def test_list_images_tags_date_inside_window_returns_200(server, credential, offset_minutes):
    url = server.base_url + tags_path(credential.project_id)
    date = datetime.now(UTC) + timedelta(minutes=offset_minutes)
    headers = sdk_signed_headers("GET", url, credential.access, credential.secret, date=date)
    assert send("GET", url, headers).status_code == 200


def test_list_images_tags_replayed_stale_request_returns_401(server, credential):
    """A request captured 20 minutes ago, replayed byte for byte, is refused."""
    url = server.base_url + tags_path(credential.project_id)
    then = datetime.now(UTC) - timedelta(minutes=20)
    headers = sdk_signed_headers("GET", url, credential.access, credential.secret, date=then)
    assert_error(send("GET", url, headers), 401, UNAUTHORIZED)


def test_list_images_tags_without_credentials_returns_401(server, credential):
    url = server.base_url + tags_path(credential.project_id)
    message = assert_error(httpx.get(url), 401, UNAUTHORIZED)
    assert "credentials" in message


def test_list_images_tags_unknown_access_key_returns_401(server, credential):
    stranger = IssuedCredential("UNKNOWNACCESSKEY0000", credential.secret, credential.project_id)
    response = signed_request(server.base_url, stranger, "GET", tags_path(credential.project_id))
    assert "unknown" in assert_error(response, 401, UNAUTHORIZED)


@pytest.mark.parametrize(
    "authorization",
    [
        "SDK-HMAC-SHA256 garbage",
        "SDK-HMAC-SHA256 Access=AK, SignedHeaders=x-sdk-date, Signature=nothex",
        "SDK-HMAC-SHA256 Access=, SignedHeaders=, Signature=",
        "SDK-HMAC-SHA256 Access=AK SignedHeaders=host Signature=00",
        "SDK-HMAC-SHA256 " + "A" * 5000,
        "Bearer abc",
        "Basic dXNlcjpwYXNz",
        "SDK-HMAC-SHA256",
    ],
)
def test_list_images_tags_malformed_authorization_returns_401(server, credential, authorization):
    url = server.base_url + tags_path(credential.project_id)
    headers = {"Authorization": authorization, "X-Sdk-Date": "20260101T000000Z"}
    assert_error(httpx.get(url, headers=headers), 401, UNAUTHORIZED)


def test_list_images_tags_date_not_signed_returns_401(server, credential):
    url = server.base_url + tags_path(credential.project_id)
    headers = sdk_signed_headers("GET", url, credential.access, credential.secret)
    signature = headers["Authorization"].rsplit("Signature=", 1)[1]
    headers["Authorization"] = (
        f"SDK-HMAC-SHA256 Access={credential.access}, SignedHeaders=host, Signature={signature}"
    )
    assert_error(send("GET", url, headers), 401, UNAUTHORIZED)


def test_list_images_tags_signed_header_missing_from_request_returns_401(server, credential):
    url = server.base_url + tags_path(credential.project_id)
    headers = sdk_signed_headers(
        "GET", url, credential.access, credential.secret, headers={"X-Custom": "1"}
    )
    del headers["X-Custom"]
    assert_error(send("GET", url, headers), 401, UNAUTHORIZED)


def test_list_images_tags_malformed_sdk_date_returns_401(server, credential):
    url = server.base_url + tags_path(credential.project_id)
    headers = sdk_signed_headers("GET", url, credential.access, credential.secret)
    headers["X-Sdk-Date"] = "yesterday"
    assert_error(send("GET", url, headers), 401, UNAUTHORIZED)


def test_list_images_tags_x_project_id_of_other_project_returns_403(server, credential):
    other = uuid.uuid4().hex
    url = server.base_url + tags_path(credential.project_id)
    headers = sdk_signed_headers(
        "GET", url, credential.access, credential.secret, headers={"X-Project-Id": other}
    )
    assert_error(send("GET", url, headers), 403, FORBIDDEN)


def test_list_images_tags_other_projects_path_returns_403(server, credential):
    other = uuid.uuid4().hex
    response = signed_request(server.base_url, credential, "GET", tags_path(other))
    assert_error(response, 403, FORBIDDEN)


def test_list_images_tags_other_project_sdk_client_reports_403(server, credential):
    client = ims_client(server.base_url, credential, project_id=uuid.uuid4().hex)
    with pytest.raises(ClientRequestException) as raised:
        client.list_images_tags(ListImagesTagsRequest())
    assert raised.value.status_code == 403
    assert raised.value.error_code == FORBIDDEN


def test_batch_tags_action_other_projects_path_returns_403(server, credential):
    body = b'{"action": "create", "tags": [{"key": "k", "value": "v"}]}'
    path = action_path(uuid.uuid4().hex, str(uuid.uuid4()))
    response = signed_request(server.base_url, credential, "POST", path, body=body)
    assert_error(response, 403, FORBIDDEN)


def test_list_images_tags_awkward_query_signed_by_sdk_returns_200(server, credential):
    query = [("tag", "b"), ("tag", "a"), ("name", "a b~c/d"), ("uni", "snow☃ü")]
    response = signed_request(
        server.base_url, credential, "GET", tags_path(credential.project_id), query=query
    )
    assert response.status_code == 200, response.text


# --- the verifier against the SDK's signer, in-process --------------------------------------

SECRET = "S" * 40
ACCESS = "AKUNITTEST0000000000"


def sdk_sign(
    method: str, path: str, query: list[tuple[str, object]], body: bytes = b""
) -> tuple[SdkRequest, dict[str, str]]:
    request = SdkRequest(
        method=method,
        schema="https",
        host="ims.example.test",
        resource_path=path,
        query_params=list(query),
        header_params={"Content-Type": "application/json"},
        body=body,
    )
    signed = Signer(BasicCredentials(ACCESS, SECRET)).sign(request)
    return signed, {k.lower(): str(v) for k, v in signed.header_params.items()}


def as_received(
    signed: SdkRequest, headers: dict[str, str], raw_query: str | None = None
) -> signing.SignedRequest:
    """The request as the server sees it: the wire path and query the SDK produced."""
    parts = urlsplit(signed.uri)
    return signing.SignedRequest(
        method=signed.method,
        raw_path=parts.path,
        raw_query=parts.query if raw_query is None else raw_query,
        headers=headers,
        body=signed.body or b"",
    )


def lookup(access: str) -> tuple[str, str] | None:
    return ("project-1", SECRET) if access == ACCESS else None


AWKWARD_QUERIES = [
    [("tag", "b"), ("tag", "a"), ("tag", "a")],
    [("name", "with  two spaces "), ("x", " ")],
    [("tilde~key", "~value~")],
    [("path", "a/b/c"), ("slash/key", "/")],
    [("name", "ünïcødé ☃ 😀"), ("ключ", "значение")],
    [("empty", ""), ("a", "=&?#")],
    [("percent", "100%"), ("plus", "a+b")],
]


@pytest.mark.parametrize("query", AWKWARD_QUERIES)
def test_verify_sdk_signed_awkward_query_strings_accepted(query):
    signed, headers = sdk_sign("GET", "/v2/p/images/tags", query)
    assert signing.verify(as_received(signed, headers), lookup) == "project-1"


@pytest.mark.parametrize("query", AWKWARD_QUERIES)
def test_verify_sdk_signed_query_reordered_on_the_wire_accepted(query):
    """Proxies and clients may reorder parameters; the canonical form sorts them."""
    signed, headers = sdk_sign("GET", "/v2/p/images/tags", query)
    reordered = "&".join(reversed(urlsplit(signed.uri).query.split("&")))
    assert signing.verify(as_received(signed, headers, reordered), lookup) == "project-1"


def test_verify_query_with_plus_for_space_accepted():
    signed, headers = sdk_sign("GET", "/v2/p/images/tags", [("name", "a b")])
    assert signing.verify(as_received(signed, headers, "name=a+b"), lookup) == "project-1"


@pytest.mark.parametrize(
    "path",
    [
        "/v2/p/images/%E2%98%83/tags",
        "/v2/p/images/a%20b",
        "/v2/p/images/a~b",
        "/v2/p/images/%7Etilde",
        "/v2/p/images/",
    ],
)
def test_verify_sdk_signed_percent_encoded_path_accepted(path):
    signed, headers = sdk_sign("GET", path, [])
    assert signing.verify(as_received(signed, headers), lookup) == "project-1"


def test_verify_sdk_signed_body_accepted_and_tampered_body_refused():
    body = '{"action": "create", "tags": [{"key": "ü", "value": "☃"}]}'.encode()
    signed, headers = sdk_sign("POST", "/v2/p/images/i/tags/action", [], body)
    assert signing.verify(as_received(signed, headers), lookup) == "project-1"
    tampered = signing.SignedRequest(
        signed.method, urlsplit(signed.uri).path, "", headers, body.replace(b"create", b"delete")
    )
    with pytest.raises(Unauthorized):
        signing.verify(tampered, lookup)


@pytest.mark.parametrize(
    ("signed_query", "received_query"),
    [
        ([("tag", "a"), ("tag", "b")], "tag=a"),
        ([("tag", "a")], "tag=a&tag=a"),
        ([("name", "a b")], "name=a%2Bb"),
        ([("k", "ü")], "k=u"),
    ],
)
def test_verify_changed_query_refused(signed_query, received_query):
    signed, headers = sdk_sign("GET", "/v2/p/images/tags", signed_query)
    with pytest.raises(Unauthorized):
        signing.verify(as_received(signed, headers, received_query), lookup)


def test_verify_compares_signatures_in_constant_time(monkeypatch):
    """The final comparison goes through hmac.compare_digest, never ``==``."""
    calls = []
    real = signing.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signing.hmac, "compare_digest", spy)
    signed, headers = sdk_sign("GET", "/v2/p/images/tags", [])
    signing.verify(as_received(signed, headers), lookup)
    assert len(calls) == 1


def test_encode_query_matches_sdk_wire_format():
    query = [("name", "a b~/ü")]
    signed, _ = sdk_sign("GET", "/x", query)
    assert encode_query(query) == urlsplit(signed.uri).query


# --- the memo of verified requests (api/security.py) -----------------------------------------


def _replay(app, url: str, headers: dict[str, str]) -> list[int]:
    """The same request, byte for byte, sent twice through one in-process app."""

    async def twice() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),  # its end closes the loop's database connection
            httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        ):
            return [(await client.get(url, headers=headers)).status_code for _ in range(2)]

    return asyncio.run(twice())


def _memo_app(settings, db, **overrides):
    from imstags.api.app import create_app
    from imstags.services.container import build_services

    changed = settings.model_copy(update=overrides)
    return create_app(changed, build_services(changed, db))


def test_memo_replay_is_refused_once_the_date_leaves_the_window(
    settings, db, credential, monkeypatch
):
    """A request repeated byte for byte skips the HMAC, never the date window."""
    app = _memo_app(settings, db)
    url = "http://test" + tags_path(credential.project_id)
    headers = sdk_signed_headers("GET", url, credential.access, credential.secret)
    assert _replay(app, url, headers) == [200, 200]

    later = (datetime.now(UTC) + timedelta(minutes=16)).timestamp()
    monkeypatch.setattr(signing, "time", types.SimpleNamespace(time=lambda: later))
    assert _replay(app, url, headers) == [401, 401]


def test_memo_replay_is_refused_once_the_credential_is_gone(settings, db, credential):
    """The memo holds only while the secret it was verified with is the cached one: a
    deleted credential stops working as soon as the cache lets go of it."""
    from imstags.domain.credentials import delete_credential_tx

    app = _memo_app(settings, db, credential_cache_seconds=0)
    url = "http://test" + tags_path(credential.project_id)
    headers = sdk_signed_headers("GET", url, credential.access, credential.secret)
    assert _replay(app, url, headers) == [200, 200]
    db.write(lambda s: delete_credential_tx(s, credential.access))
    assert _replay(app, url, headers) == [401, 401]


def test_memo_does_not_cover_a_request_that_differs(settings, db, credential):
    """Any byte of difference is a new request, verified in full: a forged signature after an
    accepted request is refused, and an added unsigned header still passes."""
    app = _memo_app(settings, db)
    url = "http://test" + tags_path(credential.project_id)
    headers = sdk_signed_headers("GET", url, credential.access, credential.secret)
    assert _replay(app, url, headers) == [200, 200]
    forged = {**headers, "Authorization": headers["Authorization"][:-4] + "0000"}
    assert _replay(app, url, forged) == [401, 401]
    assert _replay(app, url, {**headers, "User-Agent": "another"}) == [200, 200]
