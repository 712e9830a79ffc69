"""Keystone v3 tokens: issue, validate, revoke, expire; and tokens authenticating the APIs.

Requests are made by hand (httpx) where the point is the exact status and body; the full
keystoneauth flow is exercised by the openstacksdk tests.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from sqlalchemy import select

from imstags.domain import identity
from imstags.domain.identity import PasswordAuth, delete_user_tx
from imstags.errors import Unauthorized
from imstags.storage.models import Token
from tests.support.http import assert_error
from tests.support.openstack import OpenStackUser, keystone_session, make_user
from tests.support.server import start_server


def password_body(user: OpenStackUser, *, password: str | None = None, scope=None) -> dict:
    body: dict = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": user.name,
                        "domain": {"name": "Default"},
                        "password": user.password if password is None else password,
                    }
                },
            }
        }
    }
    if scope is not False:
        body["auth"]["scope"] = scope or {"project": {"id": user.project_id}}
    return body


def issue(base_url: str, user: OpenStackUser, **kwargs) -> httpx.Response:
    return httpx.post(base_url + "/v3/auth/tokens", json=password_body(user, **kwargs))


def token_of(base_url: str, user: OpenStackUser) -> str:
    response = issue(base_url, user)
    assert response.status_code == 201, response.text
    return response.headers["X-Subject-Token"]


@pytest.fixture
def user(db, project_id) -> OpenStackUser:
    return make_user(db, project_id)


def test_identity_version_discovery_at_v3(server):
    response = httpx.get(server.base_url + "/v3")

    assert response.status_code == 200
    version = response.json()["version"]
    assert version["id"].startswith("v3.")
    assert version["links"][0]["href"] == server.base_url + "/v3/"


def test_issue_token_returns_201_the_token_and_a_catalog_with_the_image_endpoint(server, user):
    response = issue(server.base_url, user)

    assert response.status_code == 201
    assert response.headers["X-Subject-Token"]
    token = response.json()["token"]
    assert token["methods"] == ["password"]
    assert token["user"]["name"] == user.name
    assert token["user"]["domain"] == {"id": "default", "name": "Default"}
    assert token["project"]["id"] == user.project_id
    assert {role["name"] for role in token["roles"]} >= {"member"}
    issued = datetime.strptime(token["issued_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    expires = datetime.strptime(token["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert expires - issued == timedelta(hours=24)
    image = next(entry for entry in token["catalog"] if entry["type"] == "image")
    assert image["endpoints"] == [
        {
            "id": "image-public",
            "interface": "public",
            "region": "RegionOne",
            "region_id": "RegionOne",
            "url": server.base_url,
        }
    ]


def test_issue_token_scoped_by_project_name(server, db, project_id):
    named = make_user(db, project_id, project_name=f"name-{project_id}")

    response = issue(
        server.base_url,
        named,
        scope={"project": {"name": f"name-{project_id}", "domain": {"id": "default"}}},
    )

    assert response.status_code == 201, response.text
    project = response.json()["token"]["project"]
    assert (project["id"], project["name"]) == (project_id, f"name-{project_id}")


def test_issue_token_without_scope_gets_the_users_project(server, user):
    response = issue(server.base_url, user, scope=False)

    assert response.status_code == 201
    assert response.json()["token"]["project"]["id"] == user.project_id


@pytest.mark.parametrize(
    "change",
    ["wrong password", "unknown user", "other domain", "other project", "no domain"],
)
def test_issue_token_with_wrong_credentials_or_scope_is_401(server, user, change):
    body = password_body(user)
    user_part = body["auth"]["identity"]["password"]["user"]
    if change == "wrong password":
        user_part["password"] = "nope"
    elif change == "unknown user":
        user_part["name"] = "nobody-" + uuid.uuid4().hex
    elif change == "other domain":
        user_part["domain"] = {"name": "Elsewhere"}
    elif change == "other project":
        body["auth"]["scope"] = {"project": {"id": uuid.uuid4().hex}}
    else:
        del user_part["domain"]

    response = httpx.post(server.base_url + "/v3/auth/tokens", json=body)

    assert_error(response, 401, "IMG.0030")
    assert "X-Subject-Token" not in response.headers


def test_issue_token_with_an_unsupported_method_is_401(server, user):
    body = {"auth": {"identity": {"methods": ["totp"], "totp": {"user": {"id": "x"}}}}}

    assert_error(httpx.post(server.base_url + "/v3/auth/tokens", json=body), 401, "IMG.0030")


def test_issue_token_by_token_method_keeps_user_project_and_expiry(server, user):
    first = issue(server.base_url, user)
    body = {
        "auth": {
            "identity": {"methods": ["token"], "token": {"id": first.headers["X-Subject-Token"]}},
            "scope": {"project": {"id": user.project_id}},
        }
    }

    second = httpx.post(server.base_url + "/v3/auth/tokens", json=body)

    assert second.status_code == 201, second.text
    assert second.headers["X-Subject-Token"] != first.headers["X-Subject-Token"]
    token = second.json()["token"]
    assert token["methods"] == ["token"]
    assert (token["user"]["id"], token["project"]["id"]) == (
        first.json()["token"]["user"]["id"], user.project_id,
    )  # fmt: skip
    assert token["expires_at"] == first.json()["token"]["expires_at"]


@pytest.mark.parametrize("subject", ["not-a-token", "revoked"])
def test_issue_token_by_token_method_with_a_bad_token_is_401(server, user, subject):
    token = token_of(server.base_url, user)
    if subject == "revoked":
        headers = {"X-Auth-Token": token, "X-Subject-Token": token}
        assert httpx.delete(server.base_url + "/v3/auth/tokens", headers=headers).status_code == 204
    else:
        token = subject
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": token}}}}

    assert_error(httpx.post(server.base_url + "/v3/auth/tokens", json=body), 401, "IMG.0030")


def test_issue_token_with_a_malformed_body_is_400(server):
    response = httpx.post(server.base_url + "/v3/auth/tokens", json={"auth": {"identity": 1}})

    assert_error(response, 400, "IMG.0001")


def test_token_authenticates_the_ims_tag_api(server, user):
    token = token_of(server.base_url, user)

    response = httpx.get(
        f"{server.base_url}/v2/{user.project_id}/images/tags", headers={"X-Auth-Token": token}
    )

    assert response.status_code == 200
    assert response.json() == {"tags": []}


def test_token_on_another_projects_path_is_403(server, user):
    token = token_of(server.base_url, user)

    response = httpx.get(
        f"{server.base_url}/v2/{uuid.uuid4().hex}/images/tags", headers={"X-Auth-Token": token}
    )

    assert_error(response, 403, "IMG.0026")


def test_bad_token_is_401(server, user):
    response = httpx.get(
        f"{server.base_url}/v2/{user.project_id}/images/tags",
        headers={"X-Auth-Token": "not-a-token"},
    )

    assert_error(response, 401, "IMG.0030")


def test_validate_token_returns_its_body_and_head_checks_it(server, user):
    token = token_of(server.base_url, user)
    headers = {"X-Auth-Token": token, "X-Subject-Token": token}

    shown = httpx.get(server.base_url + "/v3/auth/tokens", headers=headers)
    checked = httpx.head(server.base_url + "/v3/auth/tokens", headers=headers)

    assert shown.status_code == 200
    assert shown.headers["X-Subject-Token"] == token
    assert shown.json()["token"]["user"]["name"] == user.name
    assert checked.status_code == 200


def test_validate_another_users_token_is_403(server, db, user):
    other = make_user(db, user.project_id)
    headers = {
        "X-Auth-Token": token_of(server.base_url, user),
        "X-Subject-Token": token_of(server.base_url, other),
    }

    assert_error(httpx.get(server.base_url + "/v3/auth/tokens", headers=headers), 403)


def test_validate_an_unknown_subject_token_is_404(server, user):
    headers = {"X-Auth-Token": token_of(server.base_url, user), "X-Subject-Token": "gone"}

    assert_error(httpx.get(server.base_url + "/v3/auth/tokens", headers=headers), 404)


def test_revoked_token_is_401(server, user):
    token = token_of(server.base_url, user)
    headers = {"X-Auth-Token": token, "X-Subject-Token": token}

    revoked = httpx.delete(server.base_url + "/v3/auth/tokens", headers=headers)
    after = httpx.get(server.base_url + "/v2/images", headers={"X-Auth-Token": token})

    assert revoked.status_code == 204
    assert "revoked" in assert_error(after, 401, "IMG.0030")


def test_token_of_a_deleted_user_is_401(server, db, user):
    token = token_of(server.base_url, user)

    assert db.write(lambda s: delete_user_tx(s, user.name))

    response = httpx.get(server.base_url + "/v2/images", headers={"X-Auth-Token": token})
    assert_error(response, 401, "IMG.0030")


def test_tokens_are_stored_only_as_sha256(server, db, user):
    token = token_of(server.base_url, user)

    with db.read() as session:
        stored = session.scalars(select(Token.token_hash)).all()

    assert hashlib.sha256(token.encode()).hexdigest() in stored
    assert token not in stored


def test_token_expires_after_its_ttl_in_the_domain(db, user):
    issued_at = datetime(2030, 1, 1, tzinfo=UTC)
    auth = PasswordAuth(password=user.password, user_name=user.name, user_domain_name="Default")

    token, info = db.write(lambda s: identity.issue_token_tx(s, auth, 60, now=issued_at))

    with db.read() as session:
        valid = identity.read_valid_token(session, token, now=issued_at + timedelta(seconds=59))
        with pytest.raises(Unauthorized, match="expired"):
            identity.read_valid_token(session, token, now=issued_at + timedelta(seconds=60))
    assert valid.project_id == user.project_id == info.project_id


def test_expired_token_is_401_over_http(settings, db, project_id, tmp_path, monkeypatch):
    # A dedicated server whose tokens expire the moment they are issued.
    monkeypatch.setenv("IMSTAGS_TOKEN_TTL_SECONDS", "0")
    user = make_user(db, project_id)
    with start_server(settings, tmp_path / "server.log") as short_lived:
        token = token_of(short_lived.base_url, user)
        response = httpx.get(short_lived.base_url + "/v2/images", headers={"X-Auth-Token": token})

    assert "expired" in assert_error(response, 401, "IMG.0030")


def test_keystoneauth_password_session_reaches_the_image_api(server, user):
    session = keystone_session(server.base_url, user)

    response = session.get(
        "/v2/images", endpoint_filter={"service_type": "image", "interface": "public"}
    )

    assert response.status_code == 200
    assert response.json()["images"] == []
    assert session.get_project_id() == user.project_id


def test_keystoneauth_token_plugin_reaches_the_image_api(server, user):
    auth = v3.Token(
        auth_url=server.base_url + "/v3",
        token=token_of(server.base_url, user),
        project_id=user.project_id,
    )
    session = ks_session.Session(auth=auth)

    response = session.get(
        "/v2/images", endpoint_filter={"service_type": "image", "interface": "public"}
    )

    assert response.status_code == 200
