"""The service's log: one line per request with its facts (JSON or text), errors with their
request id and traceback, start-up facts one per line without Alembic's chatter."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time

import httpx
import pytest

from imstags.api.app import create_app
from imstags.logging_config import configure_logging
from tests.support.server import start_server
from tests.support.signing import sdk_signed_headers


def log_with(server, request_id: str, timeout: float = 10.0) -> str:
    """The server's log once it holds the request's line: the line is written after the
    response has gone out, so a client can read the log before the server has written it."""
    deadline = time.monotonic() + timeout
    while True:
        log: str = server.log()
        if request_id in log or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


def signed_get(base_url: str, credential) -> httpx.Response:
    url = f"{base_url}/v2/{credential.project_id}/images/tags"
    headers = sdk_signed_headers("GET", url, credential.access, credential.secret)
    return httpx.get(url, headers=headers, timeout=10)


def test_json_log_has_one_line_per_request_with_its_facts(settings, db, credential, tmp_path):
    args = ("--log-format", "json", "--log-level", "info")
    with start_server(settings, tmp_path / "json.log", extra_args=args) as server:
        response = signed_get(server.base_url, credential)
        assert response.status_code == 200
        request_id = response.headers["X-Request-Id"]
        log = log_with(server, request_id)
    records = [json.loads(line) for line in log.splitlines() if line.strip()]  # all JSON
    mine = [r for r in records if r.get("request_id") == request_id]
    assert len(mine) == 1
    line = mine[0]
    assert line["logger"] == "imstags.access"
    assert line["level"] == "INFO"
    assert line["project_id"] == credential.project_id
    assert line["route"] == "/v2/{project_id}/images/tags"
    assert line["method"] == "GET"
    assert line["status"] == 200
    assert line["client"] == "127.0.0.1"
    assert isinstance(line["latency_ms"], float)
    assert line["credentials"] == "authorization"
    assert credential.secret not in log
    assert response.request.headers["Authorization"] not in log

    messages = [r["message"] for r in records if r["logger"] == "imstags.serve"]
    assert messages[0].startswith("imstags ")
    assert any(m.startswith("database: ") for m in messages)
    assert any(m.startswith("migrations applied: ") for m in messages)
    assert any(m.startswith("serving on http://127.0.0.1:") for m in messages)
    assert not [r for r in records if r["logger"].startswith("alembic")]
    assert not [r for r in records if r["logger"].startswith("uvicorn.access")]


def test_text_log_is_readable_with_the_same_facts(settings, db, credential, tmp_path):
    args = ("--log-format", "text", "--log-level", "info")
    with start_server(settings, tmp_path / "text.log", extra_args=args) as server:
        request_id = signed_get(server.base_url, credential).headers["X-Request-Id"]
        log = log_with(server, request_id)
    [line] = [line for line in log.splitlines() if request_id in line]
    assert " INFO imstags.access GET /v2/{project_id}/images/tags 200 " in line
    assert f"project_id={credential.project_id}" in line
    assert "client=127.0.0.1" in line


def test_log_level_warning_has_no_request_lines(settings, db, credential, tmp_path):
    args = ("--log-format", "json", "--log-level", "warning")
    with start_server(settings, tmp_path / "quiet.log", extra_args=args) as server:
        request_id = signed_get(server.base_url, credential).headers["X-Request-Id"]
    log = server.log()  # read once the server has stopped: every line it wrote is there
    assert request_id not in log


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_an_unexpected_error_is_logged_with_its_request_id_and_traceback(settings, db, log_format):
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("info", log_format, stream)
    try:
        app = create_app(settings)

        def boom() -> None:
            raise RuntimeError("deliberate failure for the log test")

        app.add_api_route("/boom-for-the-log-test", boom)

        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                return await http.get("/boom-for-the-log-test")

        response = asyncio.run(call())
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert response.status_code == 500
    request_id = response.headers["X-Request-Id"]
    log = stream.getvalue()
    assert "RuntimeError: deliberate failure for the log test" in log  # the traceback
    if log_format == "json":
        records = [json.loads(line) for line in log.splitlines()]
        [error] = [r for r in records if r["level"] == "ERROR"]
        assert error["request_id"] == request_id
        assert "Traceback" in error["exc_info"]
        [access] = [r for r in records if r["logger"] == "imstags.access"]
        assert access["status"] == 500 and access["request_id"] == request_id
    else:
        assert f"request_id={request_id}" in log
