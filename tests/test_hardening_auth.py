"""Issue 11, items 1 to 7: the attacks on authentication, each sent over real HTTP (or, where
the defect is not in the HTTP path, against the service objects), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

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
        headers={"Content-Type": "text/plain"},
    )
    assert headers["X-Sdk-Content-Sha256"] == "UNSIGNED-PAYLOAD"
    response = send("POST", server.base_url + path, headers, body)
    assert "UNSIGNED-PAYLOAD" in assert_error(response, 401, UNAUTHORIZED)
    assert image_tags(server, credential, tagged_image) == ["env=prod", "keep"]


# --- items 2 and 3: nothing an unauthenticated caller sends grows memory ----------------------


class NoBody:
    async def body(self) -> bytes:
        return b""


def in_process_authenticator(db, settings, lookups: list[str], **limits):
    """The real authenticator on the real database, its blocking runner counting lookups."""
    from imstags.domain.secrets import SecretBox
    from imstags.services.auth import Authenticator

    async def counting(work, *args):
        lookups.append(args[0] if args else "")
        return work(*args)

    return Authenticator(
        db,
        SecretBox(settings.secret_key or ""),
        date_window_seconds=900,
        credential_cache_seconds=60,
        token_validator=lambda token: (_ for _ in ()).throw(AssertionError(token)),
        run_blocking=counting,
        **limits,
    )


def header_list(headers: dict[str, str], **extra: str) -> list[tuple[bytes, bytes]]:
    merged = {**headers, **extra}
    return [(k.lower().encode(), v.encode("latin-1")) for k, v in merged.items()]


def hostile(access: str, date: str) -> list[tuple[bytes, bytes]]:
    authorization = (
        f"SDK-HMAC-SHA256 Access={access}, SignedHeaders=host;x-sdk-date, Signature={'ab' * 32}"
    )
    return header_list({"Host": "h", "X-Sdk-Date": date, "Authorization": authorization})


def refused(authenticator, headers, path: bytes = b"/v2/p/images/tags") -> str:
    from imstags.errors import Unauthorized

    with pytest.raises(Unauthorized) as raised:
        asyncio.run(authenticator.authenticate("GET", path, b"", headers, NoBody()))
    return raised.value.message


def now_sdk_date() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def test_unknown_keys_with_a_stale_or_future_date_cost_no_lookup(db, settings):
    lookups: list[str] = []
    authenticator = in_process_authenticator(db, settings, lookups)
    for index in range(50):
        refused(authenticator, hostile(f"K{index:019d}", "20000101T000000Z"))
        refused(authenticator, hostile(f"F{index:019d}", "20990101T000000Z"))
    assert lookups == []  # the date window is checked before the key is looked up


def test_malformed_or_oversized_access_keys_cost_no_lookup(db, settings):
    lookups: list[str] = []
    authenticator = in_process_authenticator(db, settings, lookups)
    for access in ("A" * 129, "ab$cd", "A" * 30_000):
        refused(authenticator, hostile(access, now_sdk_date()))
    assert lookups == []


def test_authorization_header_over_the_cap_is_401_over_http(server, credential):
    url = f"{server.base_url}/v2/{credential.project_id}/images/tags"
    headers = sdk_signed_headers("GET", url, credential.access, credential.secret)
    headers["Authorization"] = headers["Authorization"].replace(
        "SignedHeaders=", "SignedHeaders=" + "x-pad;" * 1000
    )
    message = assert_error(send("GET", url, headers), 401, UNAUTHORIZED)
    assert "longer than" in message


def test_unknown_keys_are_remembered_in_a_small_bounded_set(db, settings):
    lookups: list[str] = []
    authenticator = in_process_authenticator(db, settings, lookups, unknown_key_cache_size=8)
    date = now_sdk_date()
    first = "U" + uuid.uuid4().hex[:19].upper()
    refused(authenticator, hostile(first, date))
    refused(authenticator, hostile(first, date))
    assert lookups == [first]  # the second refusal is from the negative cache
    for index in range(20):
        refused(authenticator, hostile(f"V{index:019d}", date))
    refused(authenticator, hostile(first, date))
    assert lookups.count(first) == 2  # pushed out by newer unknown keys: the set is bounded
    assert authenticator.cache_sizes()["unknown_keys"] <= 8


def test_memo_ignores_unsigned_padding_headers(db, settings, credential):
    lookups: list[str] = []
    authenticator = in_process_authenticator(db, settings, lookups)
    path = f"/v2/{credential.project_id}/images/tags"
    signed = sdk_signed_headers(
        "GET", "http://h" + path, credential.access, credential.secret, headers={}
    )
    for index in range(200):
        padded = header_list(signed, **{"X-Pad": f"{index:05d}" + "p" * 1000})
        principal = asyncio.run(
            authenticator.authenticate("GET", path.encode(), b"", padded, NoBody())
        )
        assert principal.project_id == credential.project_id
    assert authenticator.cache_sizes()["verified"] == 1  # one entry, whatever the padding


def test_memo_skipped_for_large_signed_heads(db, settings, credential):
    lookups: list[str] = []
    authenticator = in_process_authenticator(db, settings, lookups, memo_max_head_bytes=1024)
    path = f"/v2/{credential.project_id}/images/tags"
    signed = sdk_signed_headers(
        "GET",
        "http://h" + path,
        credential.access,
        credential.secret,
        headers={"X-Big": "b" * 2000},
    )
    for _ in range(3):
        asyncio.run(
            authenticator.authenticate("GET", path.encode(), b"", header_list(signed), NoBody())
        )
    assert authenticator.cache_sizes()["verified"] == 0


def test_memo_hit_still_checks_an_unsigned_project_header(db, settings, credential):
    from imstags.errors import Forbidden

    authenticator = in_process_authenticator(db, settings, [])
    path = f"/v2/{credential.project_id}/images/tags"
    signed = sdk_signed_headers("GET", "http://h" + path, credential.access, credential.secret)
    asyncio.run(
        authenticator.authenticate("GET", path.encode(), b"", header_list(signed), NoBody())
    )
    other = header_list(signed, **{"X-Project-Id": uuid.uuid4().hex})
    with pytest.raises(Forbidden):
        asyncio.run(authenticator.authenticate("GET", path.encode(), b"", other, NoBody()))


def test_memo_is_not_used_for_a_request_that_carries_a_body(server, credential):
    """A bodiless request verified once (and memoised), then replayed with a body the
    signature does not cover: the memo must not answer for it."""
    url = f"{server.base_url}/v2/{credential.project_id}/images/tags"
    headers = sdk_signed_headers("GET", url, credential.access, credential.secret)
    assert send("GET", url, headers).status_code == 200
    assert_error(send("GET", url, headers, b'{"x": 1}'), 401, UNAUTHORIZED)


# --- item 7: forwarded headers and future dates ----------------------------------------------


def test_signature_dated_beyond_the_window_in_the_future_is_401(server, credential):
    url = f"{server.base_url}/v2/{credential.project_id}/images/tags"
    future = datetime.now(UTC) + timedelta(hours=1)
    headers = sdk_signed_headers("GET", url, credential.access, credential.secret, date=future)
    assert "window" in assert_error(send("GET", url, headers), 401, UNAUTHORIZED)
    near = datetime.now(UTC) + timedelta(seconds=60)
    headers = sdk_signed_headers("GET", url, credential.access, credential.secret, date=near)
    assert send("GET", url, headers).status_code == 200


def failed_login_statuses(base_url: str, count: int, forwarded: bool) -> list[int]:
    statuses = []
    for index in range(count):
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": f"nobody-{uuid.uuid4().hex}",
                            "domain": {"id": "default"},
                            "password": "wrong",
                        }
                    },
                }
            }
        }
        headers = {"X-Forwarded-For": f"10.9.{index // 250}.{index % 250 + 1}"} if forwarded else {}
        response = httpx.post(base_url + "/v3/auth/tokens", json=body, headers=headers, timeout=30)
        statuses.append(response.status_code)
    return statuses


def test_x_forwarded_for_from_loopback_is_not_trusted_by_default(
    settings, db, tmp_path, monkeypatch
):
    from tests.support.server import start_server

    monkeypatch.setenv("IMSTAGS_LOGIN_FAILURES_PER_CLIENT", "3")
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    with start_server(settings, tmp_path / "default.log", startup_timeout=120) as running:
        # Each attempt claims another address; the peer is loopback all along.
        assert failed_login_statuses(running.base_url, 4, forwarded=True) == [401, 401, 401, 429]
    monkeypatch.setenv("IMSTAGS_FORWARDED_ALLOW_IPS", "127.0.0.1")
    with start_server(settings, tmp_path / "trusted.log", startup_timeout=120) as running:
        # A listed proxy's X-Forwarded-For names the client: four different clients.
        assert failed_login_statuses(running.base_url, 4, forwarded=True) == [401] * 4


# --- items 4 to 6: logins ----------------------------------------------------------------------


def make_user(db, project: str) -> tuple[str, str, str]:
    from imstags.domain import identity

    name = "user-" + uuid.uuid4().hex[:12]
    password = "pw-" + uuid.uuid4().hex  # noqa: S105 - a test password
    info = db.write(lambda s: identity.create_user_tx(s, name, password, project))
    return info.id, name, password


def password_body(password: str, **user: object) -> dict:
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {**user, "password": password}},
            }
        }
    }


def by_name(name: str, password: str) -> dict:
    return password_body(password, name=name, domain={"id": "default"})


def in_process_logins(settings, db, attempts: list[tuple[str, dict]], **limits) -> list[int]:
    """Statuses of logins sent in this order from the given client addresses, through the
    real app in this process (the client address is the peer's: no proxy is trusted)."""
    from imstags.services.container import build_services

    limited = settings.model_copy(update=limits)
    app = create_app(limited, build_services(limited, db))

    async def run() -> list[int]:
        statuses = []
        async with app.router.lifespan_context(app):
            for client, body in attempts:
                transport = httpx.ASGITransport(app=app, client=(client, 40000))
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                    statuses.append((await http.post("/v3/auth/tokens", json=body)).status_code)
        return statuses

    return asyncio.run(run())


def test_login_fields_longer_than_255_are_400_over_http(server):
    long = "n" * 100_000
    for body in (
        by_name(long, "wrong"),
        password_body("wrong", id=long),
        password_body("wrong", name="a", domain={"name": long}),
        by_name("a", "p" * 5000),
    ):
        response = httpx.post(server.base_url + "/v3/auth/tokens", json=body, timeout=30)
        assert_error(response, 400)
    ok = httpx.post(server.base_url + "/v3/auth/tokens", json=by_name("n" * 255, "w"), timeout=30)
    assert_error(ok, 401, UNAUTHORIZED)


def test_failures_with_an_id_and_random_names_count_against_the_user(settings, db, project_id):
    user_id, _name, password = make_user(db, project_id)
    attempts = [
        ("10.0.0.66", password_body("wrong", id=user_id, name=uuid.uuid4().hex)) for _ in range(5)
    ]
    attempts.append(("10.0.0.66", password_body(password, id=user_id)))
    statuses = in_process_logins(settings, db, attempts, login_failures_per_user=5)
    assert statuses == [401] * 5 + [429]


def test_an_id_and_a_name_of_different_users_are_refused(settings, db, project_id):
    alice_id, _alice, alice_password = make_user(db, project_id)
    _bob_id, bob, _bob_password = make_user(db, project_id)
    attempts = [
        ("10.0.0.1", password_body(alice_password, id=alice_id, name=bob)),
        ("10.0.0.1", password_body(alice_password, id=alice_id)),
    ]
    assert in_process_logins(settings, db, attempts) == [401, 201]


def test_someone_elses_failures_do_not_lock_out_a_correct_password(settings, db, project_id):
    _user_id, name, password = make_user(db, project_id)
    attempts = [("10.0.0.66", by_name(name, "guess")) for _ in range(8)]
    attempts += [("10.0.0.66", by_name(name, password)), ("10.0.0.7", by_name(name, password))]
    statuses = in_process_logins(settings, db, attempts, login_failures_per_user=5)
    assert statuses == [401] * 5 + [429] * 3 + [429, 201]


def test_unknown_names_share_one_counter_per_client(settings, db):
    attempts = [("10.0.0.66", by_name(uuid.uuid4().hex, "x")) for _ in range(4)]
    statuses = in_process_logins(settings, db, attempts, login_failures_per_user=3)
    assert statuses == [401, 401, 401, 429]


def run_with_writers_busy(settings, db, scenario):
    """``scenario(services)`` while every writer thread is held by another job."""
    import threading

    from imstags.services.container import build_services

    services = build_services(settings, db)
    threads = 1 if db.is_sqlite else settings.write_threads

    async def run():
        release = threading.Event()
        started = threading.Semaphore(0)

        def hold() -> None:
            started.release()
            release.wait(60)

        holders = [asyncio.ensure_future(services.writes.run(hold)) for _ in range(threads)]
        for _ in range(threads):
            await asyncio.to_thread(started.acquire)
        try:
            return await asyncio.wait_for(scenario(services), timeout=60)
        finally:
            release.set()
            await asyncio.gather(*holders)

    try:
        return asyncio.run(run())
    finally:
        services.close()


def test_a_failed_login_needs_no_write_transaction(settings, db, project_id):
    """The password is checked with no transaction open and off the writer threads: with
    every writer thread held, a wrong password is still answered 401 (before, the check ran
    inside a write and waited for a writer)."""
    from imstags.domain.identity import PasswordAuth
    from imstags.errors import Unauthorized

    _user_id, name, _password = make_user(db, project_id)

    async def failed_login(services) -> str:
        auth = PasswordAuth(password="wrong", user_name=name, user_domain_id="default")  # noqa: S106
        with pytest.raises(Unauthorized):
            await services.identity.login(auth, "10.0.0.1")
        return "answered"

    assert run_with_writers_busy(settings, db, failed_login) == "answered"


def test_writes_complete_while_the_password_checks_are_saturated(settings, db, project_id, image):
    """Every login thread and queue slot held: a login is refused at once with 429 and
    Retry-After, and tag writes go through meanwhile."""
    import threading

    from imstags.domain.identity import PasswordAuth
    from imstags.errors import TooManyRequests
    from imstags.services.container import build_services

    services = build_services(
        settings.model_copy(update={"login_threads": 1, "login_queue": 1}), db
    )
    _user_id, name, password = make_user(db, project_id)

    async def run() -> None:
        release = threading.Event()
        checks = services.identity._checks
        held = [asyncio.ensure_future(checks.run(release.wait, 60)) for _ in range(2)]
        await asyncio.sleep(0)
        try:
            auth = PasswordAuth(password=password, user_name=name, user_domain_id="default")
            with pytest.raises(TooManyRequests) as refused:
                await services.identity.login(auth, "10.0.0.1")
            assert refused.value.headers["Retry-After"] == "1"
            for index in range(5):
                await services.tags.add_tag(project_id, image, f"k{index}", "v")
            assert len(await services.tags.image_tags(project_id, image)) == 5
        finally:
            release.set()
            await asyncio.gather(*held)

    try:
        asyncio.run(run())
    finally:
        services.close()
