"""Nobody let in: every route of the app refuses missing and other-project credentials, secrets
stay out of logs and out of the database in clear, and failed logins are throttled.

The route walk works from the app's own route table, so an endpoint added later is covered
without touching this file; one that is public by mistake makes it fail.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from imstags.api.app import create_app
from imstags.api.openapi import api_routes, requires_credentials
from imstags.domain import identity
from imstags.domain.secrets import SecretBox
from imstags.errors import Unauthorized
from imstags.services.auth import Authenticator, Principal
from imstags.storage.models import Credential
from tests.support.http import assert_error, signed_request
from tests.support.server import start_server

# The documented exceptions: probes, version discovery and token issuing need no credentials
# (docs/robustness.md). Anything else without credentials is a hole.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/"),
    ("GET", "/versions"),
    ("GET", "/v2"),
    ("GET", "/v2/"),
    ("GET", "/v2.0"),
    ("GET", "/v2.1"),
    ("GET", "/v2.2"),
    ("GET", "/v3"),
    ("GET", "/v3/"),
    ("POST", "/v3/auth/tokens"),
}
PATH_PARAM = re.compile(r"\{([^}]+)\}")


@pytest.fixture(scope="module")
def routes(settings):
    app = create_app(settings)
    return [
        (method, route.path_format, requires_credentials(route))
        for route in api_routes(app)
        # The admin API has its own token (tests/test_state_seed.py checks every route of it).
        if route.original_route.include_in_schema
        for method in sorted(route.methods)
    ]


@pytest.fixture
def victim_image(server, credential) -> str:
    """An image of the credential's project, with tags, that others must not touch."""
    body = json.dumps({"name": "victim", "tags": ["secret=yes", "keep"]}).encode()
    response = signed_request(server.base_url, credential, "POST", "/v2/images", body=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def concrete(path: str, project: str, image_id: str) -> str:
    values = {"project_id": project, "image_id": image_id}
    return PATH_PARAM.sub(lambda m: values.get(m.group(1), "x"), path)


def test_route_table_public_routes_are_exactly_the_documented_ones(routes):
    public = {(method, path) for method, path, secured in routes if not secured}
    assert public - PUBLIC == set()  # nothing public beyond the documented exceptions
    assert {("GET", "/healthz"), ("GET", "/readyz"), ("POST", "/v3/auth/tokens")} <= public


def test_every_route_without_credentials_returns_401(server, routes, credential, victim_image):
    checked = 0
    for method, path, secured in routes:
        if not secured:
            continue
        url = server.base_url + concrete(path, credential.project_id, victim_image)
        response = httpx.request(
            method, url, content=b"{}", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 401, (method, path, response.status_code, response.text)
        if method != "HEAD":
            assert_error(response, 401, "IMG.0030")
        checked += 1
    assert checked >= 5


def test_every_route_with_garbage_token_returns_401(server, routes, credential, victim_image):
    for method, path, secured in routes:
        if not secured:
            continue
        url = server.base_url + concrete(path, credential.project_id, victim_image)
        response = httpx.request(
            method,
            url,
            content=b"{}",
            headers={"Content-Type": "application/json", "X-Auth-Token": "gAAAAA-not-a-token"},
        )
        assert response.status_code == 401, (method, path, response.text)


def test_every_route_with_other_projects_credentials_is_refused_and_changes_nothing(
    server, routes, credential, make_credential, victim_image
):
    """Project B's valid AK/SK against project A's paths and image: 403 where the path names
    A's project, 404 where it names A's image (ids of others are not disclosed), and A's
    image and tags are intact afterwards."""
    intruder = make_credential(uuid.uuid4().hex)
    before = signed_request(server.base_url, credential, "GET", f"/v2/images/{victim_image}")
    assert before.status_code == 200
    for method, path, secured in routes:
        if not secured or ("{project_id}" not in path and "{image_id}" not in path):
            continue
        body = b'{"action": "delete", "tags": [{"key": "keep"}]}' if method != "GET" else b""
        response = signed_request(
            server.base_url,
            intruder,
            method,
            concrete(path, credential.project_id, victim_image),
            body=body,
        )
        # A path naming A's project is 403. One naming only A's image is refused like a
        # missing image (404), or earlier for the body (400): either way nothing is disclosed.
        if "{project_id}" in path:
            assert response.status_code == 403, (method, path, response.text)
        else:
            assert response.status_code in {400, 403, 404, 415}, (method, path, response.text)
    after = signed_request(server.base_url, credential, "GET", f"/v2/images/{victim_image}")
    assert after.status_code == 200
    assert after.json()["tags"] == before.json()["tags"]


def test_every_list_route_with_other_projects_credentials_does_not_show_the_image(
    server, routes, credential, make_credential, victim_image
):
    intruder = make_credential(uuid.uuid4().hex)
    listed = 0
    for method, path, secured in routes:
        if method != "GET" or not secured or "{" in path:
            continue
        response = signed_request(server.base_url, intruder, "GET", path)
        assert victim_image not in response.text, path
        listed += 1
    own = signed_request(server.base_url, intruder, "GET", f"/v2/{intruder.project_id}/images/tags")
    assert "secret" not in own.text
    assert listed >= 1


def test_aksk_secret_is_encrypted_at_rest(db, settings, credential):
    with db.read() as session:
        row = session.get(Credential, credential.access)
        assert row is not None
        stored = row.secret_encrypted
        dump = " ".join(
            str(v) for v in session.execute(text("SELECT * FROM credentials")).fetchall()
        )
    assert credential.secret not in stored
    assert credential.secret not in dump
    assert SecretBox(settings.secret_key or "").open(stored) == credential.secret


def make_user(db, project: str) -> tuple[str, str]:
    name = "user-" + uuid.uuid4().hex[:12]
    password = "pw-" + uuid.uuid4().hex  # noqa: S105 - a test password
    db.write(lambda s: identity.create_user_tx(s, name, password, project))
    return name, password


def login_body(name: str, password: str, project: str) -> dict:
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": name, "domain": {"id": "default"}, "password": password}
                },
            },
            "scope": {"project": {"id": project}},
        }
    }


def login(base_url: str, name: str, password: str, project: str) -> httpx.Response:
    body = login_body(name, password, project)
    return httpx.post(base_url + "/v3/auth/tokens", json=body, timeout=30)


def test_tokens_are_stored_only_as_hashes(server, db, project_id):
    name, password = make_user(db, project_id)
    response = login(server.base_url, name, password, project_id)
    assert response.status_code == 201, response.text
    token = response.headers["X-Subject-Token"]
    with db.read() as session:
        rows = session.execute(text("SELECT * FROM tokens")).fetchall()
        users = session.execute(text("SELECT * FROM users")).fetchall()
    dump = " ".join(str(v) for v in rows)
    assert token not in dump
    assert hashlib.sha256(token.encode()).hexdigest() in dump
    assert password not in " ".join(str(v) for v in users)


def test_create_token_failed_logins_are_throttled_with_429(server, db, project_id):
    name, password = make_user(db, project_id)
    for _ in range(5):
        failed = login(server.base_url, name, "wrong-password", project_id)
        assert_error(failed, 401, "IMG.0030")
    throttled = login(server.base_url, name, password, project_id)  # even the right one
    assert_error(throttled, 429, "IMG.0060")
    assert int(throttled.headers["Retry-After"]) > 0
    other_name, other_password = make_user(db, project_id)
    assert login(server.base_url, other_name, other_password, project_id).status_code == 201


def test_create_token_success_resets_the_users_failure_count(server, db, project_id):
    name, password = make_user(db, project_id)
    for _ in range(4):
        assert login(server.base_url, name, "wrong", project_id).status_code == 401
    assert login(server.base_url, name, password, project_id).status_code == 201
    for _ in range(4):
        assert login(server.base_url, name, "wrong", project_id).status_code == 401
    assert login(server.base_url, name, password, project_id).status_code == 201


def test_server_logs_at_debug_level_contain_no_secret(settings, db, make_credential, tmp_path):
    """A debug-level server sees signed requests, logins (good and bad) and token use; its
    whole log must not contain the secret key, the password, the token or a signature."""
    project = uuid.uuid4().hex
    credential = make_credential(project)
    name, password = make_user(db, project)
    log_path = tmp_path / "debug.log"
    with start_server(
        settings, log_path, extra_args=("--log-level", "debug"), startup_timeout=120
    ) as running:
        base = running.base_url
        signed = signed_request(base, credential, "GET", f"/v2/{project}/images/tags")
        assert signed.status_code == 200
        bad = signed_request(
            base, credential, "GET", f"/v2/{project}/images/tags", headers={"X-Extra": "1"}
        )
        assert bad.status_code == 200
        assert login(base, name, "not-" + password, project).status_code == 401
        issued = login(base, name, password, project)
        assert issued.status_code == 201
        token = issued.headers["X-Subject-Token"]
        used = httpx.get(f"{base}/v2/{project}/images/tags", headers={"X-Auth-Token": token})
        assert used.status_code == 200
        wrong = httpx.get(f"{base}/v2/{project}/images/tags", headers={"X-Auth-Token": token[::-1]})
        assert wrong.status_code == 401
        signature = signed.request.headers["Authorization"].rsplit("Signature=", 1)[1]
    log = log_path.read_text(errors="replace")
    assert '"logger": "imstags.access"' in log  # the server really logged its requests
    for secret in (credential.secret, password, token, token[::-1], signature):
        assert secret not in log


def _logins(settings, db, name: str, passwords: list[str], project: str, **limits) -> list[int]:
    """Statuses of logins in this order, through an in-process app with these limits."""
    from imstags.api.app import create_app
    from imstags.services.container import build_services

    limited = settings.model_copy(update=limits)
    app = create_app(limited, build_services(limited, db))

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        ):
            return [
                (
                    await client.post("/v3/auth/tokens", json=login_body(name, p, project))
                ).status_code
                for p in passwords
            ]

    return asyncio.run(run())


def test_login_limits_are_settings(settings, db, project_id):
    name, password = make_user(db, project_id)
    tight = _logins(
        settings, db, name, ["wrong", "wrong", password], project_id, login_failures_per_user=2
    )
    assert tight == [401, 401, 429]
    name, password = make_user(db, project_id)
    off = _logins(
        settings, db, name, ["wrong"] * 7 + [password], project_id, login_failures_per_user=0
    )
    assert off == [401] * 7 + [201]


def test_authenticator_checks_plain_request_facts_without_a_web_framework(db, settings):
    """The service takes what the HTTP layer hands it (method, raw path and query, header
    list, a body source) and the token check it is given; no request object is needed."""
    seen: list[str] = []

    def validate(token: str) -> Principal:
        seen.append(token)
        return Principal(project_id="p" * 32, method="token", user_id="u")

    async def inline(work, *args):
        return work(*args)

    class NoBody:
        async def body(self) -> bytes:
            raise AssertionError("a token request's body is never read")

    authenticator = Authenticator(
        db,
        SecretBox(Fernet.generate_key()),
        date_window_seconds=900,
        credential_cache_seconds=5,
        token_validator=validate,
        run_blocking=inline,
    )
    headers = [(b"x-auth-token", b"tok"), (b"content-length", b"3")]

    principal = asyncio.run(authenticator.authenticate("GET", b"/v2/x", b"", headers, NoBody()))

    assert principal.project_id == "p" * 32 and principal.method == "token"
    assert seen == ["tok"]
    with pytest.raises(Unauthorized):
        asyncio.run(authenticator.authenticate("GET", b"/v2/x", b"", [], NoBody()))
