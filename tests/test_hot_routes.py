"""The lean path (imstags.api.hot_routes) answers exactly as FastAPI's routes do.

Two apps share one set of services: one with the lean path, one without (``hot_routes=False``).
Each request of a table goes to both, from the same starting state, and the answers (status,
body, headers but the request id) and the tags left behind must be equal. A counter on the
lean app's router shows which requests the lean path served itself and which it left to
FastAPI, so that the comparison is known to compare the two paths.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from imstags.api.app import create_app
from imstags.services import metrics
from imstags.services.container import Services, build_services
from imstags.services.faults import parse_rule
from tests.support.openstack import OpenStackUser, make_user
from tests.support.signing import sdk_signed_headers

BASE = "http://test"
UNCOMPARED = ("x-request-id", "date")
BATCH = "/v2/{project_id}/images/{image_id}/tags/action"
ADD = "/v2/{project_id}/images/{image_id}/tags"
DELETE = "/v2/{project_id}/images/{image_id}/tags/{key}"
CORE = "/v2/{project_id}/images/tags"
BASELINE = [("keep", "1"), ("gone", "2"), ("a/b", "3")]


@dataclass
class Apps:
    services: Services
    lean: Any
    plain: Any
    credential: Any
    other: Any  # a credential of another project
    user: OpenStackUser  # a Keystone user of the credential's project
    router_calls: list[str] = field(default_factory=list)


@pytest.fixture
def apps(settings, db, make_credential) -> Iterator[Apps]:
    with_admin = settings.model_copy(update={"admin_token": "admin-" + uuid.uuid4().hex})
    services = build_services(with_admin, db)
    lean = create_app(with_admin, services)
    plain = create_app(with_admin, services, hot_routes=False)
    credential = make_credential(uuid.uuid4().hex)
    found = Apps(
        services,
        lean,
        plain,
        credential,
        make_credential(uuid.uuid4().hex),
        make_user(db, credential.project_id),
    )
    # Count what reaches the lean app's router: only what the lean path left to FastAPI.
    inner = lean.router.middleware_stack

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            found.router_calls.append(scope["path"])
        await inner(scope, receive, send)

    lean.router.middleware_stack = counted
    yield found


def run(apps: Apps, script: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``script`` on one event loop, inside the apps' lifespan (which closes the services'
    connections at the end)."""

    async def main() -> Any:
        async with apps.lean.router.lifespan_context(apps.lean):
            return await script()

    return asyncio.run(main())


async def send(
    app: Any,
    credential: Any,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    headers: dict[str, str] | None = None,
    tamper: Callable[[dict[str, str]], dict[str, str]] | None = None,
) -> httpx.Response:
    """The request signed as the SDK signs it, ``headers`` included (the SDK signs every
    header it sends); ``tamper`` changes the signed headers."""
    signed = sdk_signed_headers(
        method, BASE + path, credential.access, credential.secret, body=body, headers=headers
    )
    if tamper is not None:
        signed = tamper(signed)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        return await client.request(method, path, content=body, headers=signed)


def comparable(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    headers = sorted((k, v) for k, v in response.headers.items() if k not in UNCOMPARED)
    return response.status_code, response.content, headers


async def issue_token(apps: Apps) -> str:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": apps.user.name,
                        "domain": {"name": "Default"},
                        "password": apps.user.password,
                    }
                },
            },
            "scope": {"project": {"id": apps.user.project_id}},
        }
    }
    transport = httpx.ASGITransport(app=apps.plain)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        response = await client.post("/v3/auth/tokens", json=body)
    assert response.status_code == 201, response.text
    return response.headers["X-Subject-Token"]


async def new_image(apps: Apps) -> str:
    body = json.dumps({"name": "hot"}).encode()
    response = await send(apps.plain, apps.credential, "POST", "/v2/images", body)
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


async def reset_tags(apps: Apps, image_id: str) -> None:
    """The image back to BASELINE, through the FastAPI-only app."""
    path = BATCH.format(project_id=apps.credential.project_id, image_id=image_id)
    current = await image_tags(apps, image_id)
    if current:
        body = json.dumps({"action": "delete", "tags": [{"key": k} for k in current]}).encode()
        assert (await send(apps.plain, apps.credential, "POST", path, body)).status_code == 204
    tags = [{"key": k, "value": v} for k, v in BASELINE]
    body = json.dumps({"action": "create", "tags": tags}).encode()
    assert (await send(apps.plain, apps.credential, "POST", path, body)).status_code == 204


async def image_tags(apps: Apps, image_id: str) -> dict[str, str]:
    path = ADD.format(project_id=apps.credential.project_id, image_id=image_id)
    response = await send(apps.plain, apps.credential, "GET", path)
    return {t["key"]: t["value"] for t in response.json()["tags"]}


def _bad_signature(headers: dict[str, str]) -> dict[str, str]:
    authorization = headers["Authorization"]
    return {**headers, "Authorization": authorization[:-4] + "0000"}


def _no_credentials(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != "Authorization"}


def _token(headers: dict[str, str]) -> dict[str, str]:
    return {**_no_credentials(headers), "X-Auth-Token": "not-a-token"}


def _no_content_type(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != "Content-Type"}


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str  # a template: {project_id}, {image_id}, {key}
    body: bytes = b""
    lean: bool = True  # served by the lean path itself (else left to FastAPI)
    headers: dict[str, str] | None = None
    tamper: Callable[[dict[str, str]], dict[str, str]] | None = None
    other_project: bool = False  # the path names another project than the credential's
    unknown_image: bool = False
    valid_token: bool = False  # a Keystone token instead of the AK/SK signature
    key: str = "gone"


def _batch(action: object, tags: object, **extra: object) -> bytes:
    return json.dumps({"action": action, "tags": tags, **extra}).encode()


NEW = [{"key": "new", "value": "v"}]
CASES = [
    Case("batch create", "POST", BATCH, _batch("create", NEW)),
    Case("batch delete", "POST", BATCH, _batch("delete", [{"key": "gone"}, {"key": "x"}])),
    Case("batch create without value", "POST", BATCH, _batch("create", [{"key": "k"}])),
    Case("batch null value", "POST", BATCH, _batch("delete", [{"key": "gone", "value": None}])),
    Case("batch extra fields", "POST", BATCH,
         _batch("create", [{"key": "k", "value": "v", "x": 1}], extra=True)),
    Case("batch empty tags", "POST", BATCH, _batch("create", [])),
    Case("batch bad action", "POST", BATCH, _batch("explode", NEW)),
    Case("batch eleven tags", "POST", BATCH,
         _batch("create", [{"key": f"k{i}", "value": "v"} for i in range(11)])),
    Case("batch bad key", "POST", BATCH, _batch("create", [{"key": "", "value": "v"}])),
    Case("batch invalid JSON", "POST", BATCH, b"{", lean=False),
    Case("batch JSON array", "POST", BATCH, b"[]", lean=False),
    Case("batch JSON null", "POST", BATCH, b"null", lean=False),
    Case("batch action not a string", "POST", BATCH, _batch(1, NEW), lean=False),
    Case("batch tags not a list", "POST", BATCH, _batch("create", NEW[0]), lean=False),
    Case("batch key not a string", "POST", BATCH,
         _batch("create", [{"key": 1, "value": "v"}]), lean=False),
    Case("batch value a number", "POST", BATCH,
         _batch("create", [{"key": "k", "value": 1}]), lean=False),
    Case("batch missing tags", "POST", BATCH, b'{"action": "create"}', lean=False),
    Case("batch missing body", "POST", BATCH, b"", lean=False),
    Case("batch NUL escape", "POST", BATCH, _batch("create", [{"key": "a\x00", "value": "v"}]),
         lean=False),
    Case("batch text/plain", "POST", BATCH, _batch("create", NEW), lean=False,
         headers={"Content-Type": "text/plain"}),
    Case("batch no content type", "POST", BATCH, _batch("create", NEW), lean=False,
         tamper=_no_content_type),
    Case("batch charset", "POST", BATCH, _batch("create", NEW),
         headers={"Content-Type": "application/json; charset=utf-8"}),
    Case("batch unknown image", "POST", BATCH, _batch("create", NEW), unknown_image=True),
    Case("batch other project", "POST", BATCH, _batch("create", NEW), other_project=True),
    Case("batch bad signature", "POST", BATCH, _batch("create", NEW), tamper=_bad_signature),
    Case("batch no credentials", "POST", BATCH, _batch("create", NEW), tamper=_no_credentials),
    Case("batch bad token", "POST", BATCH, _batch("create", NEW), tamper=_token),
    Case("batch token", "POST", BATCH, _batch("create", NEW), valid_token=True),
    Case("batch token other project", "POST", BATCH, _batch("create", NEW), valid_token=True,
         other_project=True),
    Case("batch X-Project-Id mismatch", "POST", BATCH, _batch("create", NEW),
         headers={"X-Project-Id": "another"}),
    Case("add", "POST", ADD, b'{"tag": {"key": "new", "value": ""}}'),
    Case("add existing key", "POST", ADD, b'{"tag": {"key": "keep", "value": "9"}}'),
    Case("add extra fields", "POST", ADD, b'{"tag": {"key": "n", "value": "v", "x": 0}, "y": 1}'),
    Case("add bad key", "POST", ADD, b'{"tag": {"key": " ", "value": "v"}}'),
    Case("add without value", "POST", ADD, b'{"tag": {"key": "new"}}', lean=False),
    Case("add value a number", "POST", ADD, b'{"tag": {"key": "new", "value": 1}}', lean=False),
    Case("add no tag", "POST", ADD, b'{"key": "new", "value": "v"}', lean=False),
    Case("add other project", "POST", ADD, b'{"tag": {"key": "n", "value": "v"}}',
         other_project=True),
    Case("delete", "DELETE", DELETE),
    Case("delete missing key", "DELETE", DELETE, key="nope"),
    Case("delete key with slash", "DELETE", DELETE, key="a%2Fb"),
    Case("delete unknown image", "DELETE", DELETE, unknown_image=True),
    Case("delete other project", "DELETE", DELETE, other_project=True),
    Case("delete bad signature", "DELETE", DELETE, tamper=_bad_signature),
    Case("delete with a body", "DELETE", DELETE, b"{}", lean=False),
    Case("core", "GET", CORE),
    Case("core other project", "GET", CORE, other_project=True),
    Case("core bad signature", "GET", CORE, tamper=_bad_signature),
    Case("core no credentials", "GET", CORE, tamper=_no_credentials),
    Case("core bad token", "GET", CORE, tamper=_token),
    Case("core token", "GET", CORE, valid_token=True),
    Case("delete token", "DELETE", DELETE, valid_token=True),
    Case("core stale If-None-Match", "GET", CORE, headers={"If-None-Match": '"stale"'}),
    Case("core HEAD", "HEAD", CORE, lean=False),
    Case("core OPTIONS", "OPTIONS", CORE, lean=False),
    Case("core PUT", "PUT", CORE, b"{}", lean=False),
    Case("core trailing slash", "GET", CORE + "/", lean=False),
    Case("batch GET", "GET", BATCH, lean=False),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_lean_and_fastapi_answer_alike(apps, case):
    async def script() -> None:
        image_id = await new_image(apps)
        project = apps.other.project_id if case.other_project else apps.credential.project_id
        path = case.path.format(
            project_id=project,
            image_id=uuid.uuid4().hex if case.unknown_image else image_id,
            key=case.key,
        )
        tamper = case.tamper
        if case.valid_token:
            token = await issue_token(apps)

            def tamper(headers: dict[str, str]) -> dict[str, str]:
                return {**_no_credentials(headers), "X-Auth-Token": token}

        answers, states = [], []
        for app in (apps.lean, apps.plain):
            await reset_tags(apps, image_id)
            apps.router_calls.clear()
            response = await send(app, apps.credential, case.method, path, case.body,
                                  headers=case.headers, tamper=tamper)  # fmt: skip
            if app is apps.lean:
                assert bool(apps.router_calls) != case.lean, apps.router_calls
            answers.append(comparable(response))
            states.append(await image_tags(apps, image_id))
        assert answers[0] == answers[1]
        assert states[0] == states[1]
        if case.valid_token:  # the token was accepted: the answer is the route's own
            assert answers[0][0] == (
                403 if case.other_project else 200 if case.method == "GET" else 204
            )

    run(apps, script)


def test_if_none_match_gets_the_same_304(apps):
    async def script() -> None:
        path = CORE.format(project_id=apps.credential.project_id)
        etag = (await send(apps.plain, apps.credential, "GET", path)).headers["ETag"]
        answers = []
        for app in (apps.lean, apps.plain):
            apps.router_calls.clear()
            response = await send(app, apps.credential, "GET", path,
                                  headers={"If-None-Match": etag})  # fmt: skip
            assert response.status_code == 304
            answers.append(comparable(response))
        assert answers[0] == answers[1]
        assert not apps.router_calls  # the lean app's 304 was its own

    run(apps, script)


def _request_count(route: str, method: str, status: str) -> float:
    body, _media_type = metrics.exposition()
    total = 0.0
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "imstags_http_requests_total" and (
                labels.get("route"),
                labels.get("method"),
                labels.get("status"),
            ) == (route, method, status):
                total += sample.value
    return total


def test_access_log_and_metrics_name_the_route_template(apps, caplog):
    async def script() -> None:
        image_id = await new_image(apps)
        await reset_tags(apps, image_id)
        project = apps.credential.project_id
        before = _request_count(BATCH, "POST", "204"), _request_count(CORE, "GET", "403")
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="imstags.access"):
            apps.router_calls.clear()
            path = BATCH.format(project_id=project, image_id=image_id)
            written = await send(apps.lean, apps.credential, "POST", path, _batch("create", NEW))
            refused = await send(apps.lean, apps.credential, "GET",
                                 CORE.format(project_id=apps.other.project_id))  # fmt: skip
        assert (written.status_code, refused.status_code) == (204, 403)
        assert not apps.router_calls
        lines = [r for r in caplog.records if r.name == "imstags.access"]
        facts = [(r.route, r.status, r.project_id, r.request_id) for r in lines]  # type: ignore[attr-defined]
        assert facts == [
            (BATCH, 204, project, written.headers["X-Request-Id"]),
            (CORE, 403, apps.other.project_id, refused.headers["X-Request-Id"]),
        ]
        after = _request_count(BATCH, "POST", "204"), _request_count(CORE, "GET", "403")
        assert (after[0] - before[0], after[1] - before[1]) == (1, 1)

    run(apps, script)


@pytest.mark.parametrize(
    "rule",
    [
        {"operation": "Adding or Deleting Image Tags in a Batch", "status": 503},
        {"operation": BATCH, "method": "POST", "tag_key": "new", "status": 503},
    ],
    ids=["operation", "tag key in the body"],
)
def test_a_fault_rule_on_a_hot_route_still_fires(apps, rule):
    async def script() -> None:
        image_id = await new_image(apps)
        await reset_tags(apps, image_id)
        path = BATCH.format(project_id=apps.credential.project_id, image_id=image_id)
        apps.services.faults.add(parse_rule({**rule, "times": 1}))
        try:
            first = await send(apps.lean, apps.credential, "POST", path, _batch("create", NEW))
            second = await send(apps.lean, apps.credential, "POST", path, _batch("create", NEW))
        finally:
            apps.services.faults.clear()
        assert first.status_code == 503
        assert first.json()["error"]["code"] == "IMG.0061"
        assert second.status_code == 204  # the rule fired once; the lean path took the body
        assert (await image_tags(apps, image_id))["new"] == "v"

    run(apps, script)
