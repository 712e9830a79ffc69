"""Issue 11, faults and load (items 13 to 16): a rebuild stampede, a frozen or locked
database, database refusals and slow clients each end in a bounded, documented answer.

Figures (memory of the stampede, time to the 503) come from ``benchmarks/stampede_memory.py``
and docs/robustness.md; these tests assert behaviour only.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from imstags.domain.credentials import IssuedCredential, create_credential_tx
from imstags.domain.secrets import SecretBox
from imstags.services.tags import TagService
from imstags.services.writes import WriteRunner
from imstags.settings import Settings
from imstags.storage.database import Database
from imstags.storage.migrate import upgrade
from tests.support.aggregate import assert_aggregate_exact
from tests.support.databases import temporary_postgres_database
from tests.support.http import assert_error, signed_request
from tests.support.server import RunningServer, start_server
from tests.support.tagging import create_image, summary
from tests.support.tcp_proxy import tcp_proxy

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def test_list_images_tags_concurrent_readers_after_write_share_one_rebuild(db, ims, credential):
    """Item 13: thirty readers that all miss the cache after a write run one rebuild, and
    all get the body of the version they read."""
    create_image(ims, "env=prod", "tier=web")
    service = TagService(db, WriteRunner(db, threads=1))

    async def thirty_readers():
        try:
            return await asyncio.gather(
                *(service.summary(credential.project_id) for _ in range(30))
            )
        finally:
            await db.close_async()

    bodies = asyncio.run(thirty_readers())
    assert service._summaries.rebuilds == 1
    assert {body.body for body in bodies} == {bodies[0].body}
    assert orjson.loads(bodies[0].body) == {"tags": _as_pairs(summary(ims))}


def _as_pairs(tags: dict[str, list[str]]) -> list[dict[str, object]]:
    return [{"key": key, "values": values} for key, values in tags.items()]


# --- item 14: every wait on the database is bounded --------------------------------------

# A guard against hangs, not a speed assertion: the service's own bounds are the settings
# below (a few seconds); a request without an answer after this long is hung.
HANG_GUARD = 40.0
SHORT_LIMITS = {
    "IMSTAGS_DATABASE_LOCK_TIMEOUT_SECONDS": "1",
    "IMSTAGS_DATABASE_DEADLINE_SECONDS": "4",
    "IMSTAGS_READINESS_TIMEOUT_SECONDS": "2",
    "IMSTAGS_CREDENTIAL_CACHE_SECONDS": "0",
}


class Client:
    """Signed requests of one project against one server, each guarded against hangs."""

    def __init__(self, server: RunningServer, credential: IssuedCredential) -> None:
        self.server = server
        self.credential = credential
        self.project = credential.project_id

    def request(self, method: str, path: str, body: object = None) -> httpx.Response:
        raw = b"" if body is None else json.dumps(body).encode()
        return signed_request(
            self.server.base_url, self.credential, method, path, body=raw, timeout=HANG_GUARD
        )

    def create_image(self, name: str = "img") -> str:
        response = self.request("POST", "/v2/images", {"name": name})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def add_tag(self, image: str, key: str, value: str = "v") -> httpx.Response:
        body = {"action": "create", "tags": [{"key": key, "value": value}]}
        return self.request("POST", f"/v2/{self.project}/images/{image}/tags/action", body)

    def ready(self) -> httpx.Response:
        return httpx.get(self.server.base_url + "/readyz", timeout=HANG_GUARD)


@contextmanager
def dedicated_server(
    url: str, tmp_path: Path, key: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningServer]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(database_url=url, data_dir=tmp_path, secret_key=key)
    with start_server(settings, tmp_path / "server.log", startup_timeout=120) as server:
        yield server


def _credential(url: str, key: str, project: str) -> IssuedCredential:
    direct = Database(url)
    try:
        return direct.write(lambda s: create_credential_tx(s, SecretBox(key), project))
    finally:
        direct.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database of this test's own (faults of a network database
    are tested in both runs of the suite, as in test_database_faults.py)."""
    server_url = os.environ.get("IMSTAGS_TEST_DATABASE_URL") or DEFAULT_POSTGRES
    with temporary_postgres_database(server_url) as url:
        upgrade(url)
        yield url


def test_readyz_and_writes_database_frozen_answer_503_in_bounded_time(
    postgres_url, tmp_path, monkeypatch
):
    """Item 14: PostgreSQL frozen behind a proxy (connections open, nothing answered): the
    probe and tag writes answer 503 within their deadlines, and all heals once it thaws."""
    key = Fernet.generate_key().decode()
    credential = _credential(postgres_url, key, uuid.uuid4().hex)
    url = make_url(postgres_url)
    with tcp_proxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        with dedicated_server(proxied, tmp_path, key, SHORT_LIMITS, monkeypatch) as server:
            client = Client(server, credential)
            image = client.create_image()
            assert client.ready().status_code == 200

            proxy.set_mode("frozen")
            try:
                assert "Not ready" in assert_error(client.ready(), 503, "IMG.0061")
                assert_error(client.add_tag(image, "during"), 503, "IMG.0061")
                assert_error(client.add_tag(image, "during-2"), 503, "IMG.0061")
                assert httpx.get(server.base_url + "/healthz").status_code == 200
            finally:
                proxy.set_mode("up")

            _wait_until_ready(client)
            assert client.add_tag(image, "after").status_code == 204
    with _direct(postgres_url) as db:
        assert_aggregate_exact(db, credential.project_id)


def test_tag_write_image_locked_elsewhere_other_project_writes_proceed(
    settings, db, make_credential, tmp_path, monkeypatch
):
    """Item 14: another connection holds a lock (the image row on PostgreSQL, the database's
    write lock on SQLite). Writes that need it get 503 within the lock timeout, so they cannot
    hold the writer threads; on PostgreSQL another project's write goes through meanwhile."""
    locked_client_credential = make_credential(uuid.uuid4().hex)
    other_credential = make_credential(uuid.uuid4().hex)
    url = settings.resolved_database_url
    with dedicated_server(url, tmp_path, settings.secret_key, SHORT_LIMITS, monkeypatch) as server:
        locked = Client(server, locked_client_credential)
        other = Client(server, other_credential)
        image, other_image = locked.create_image(), other.create_image()

        with _lock_held_elsewhere(db, image), ThreadPoolExecutor(4) as pool:
            blocked = [pool.submit(locked.add_tag, image, f"k{n}") for n in range(3)]
            time.sleep(0.2)  # let them reach the writer threads first
            unrelated = pool.submit(other.add_tag, other_image, "free")
            for future in blocked:
                assert_error(future.result(), 503, "IMG.0061")
            if not db.is_sqlite:  # SQLite has one write lock for the whole database
                assert unrelated.result().status_code == 204, unrelated.result().text
            else:
                assert_error(unrelated.result(), 503, "IMG.0061")

        assert locked.add_tag(image, "after").status_code == 204
        assert other.add_tag(other_image, "after").status_code == 204
    assert_aggregate_exact(db, locked_client_credential.project_id)
    assert_aggregate_exact(db, other_credential.project_id)


@contextmanager
def _lock_held_elsewhere(db: Database, image: str) -> Iterator[None]:
    """What a stuck transaction of another client holds, from a connection of the test."""
    if db.is_sqlite:
        path = make_url(db.url).database
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    conninfo = make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as connection:
        connection.execute("SELECT id FROM images WHERE id = %s FOR UPDATE", (image,))
        yield
        connection.rollback()


def _wait_until_ready(client: Client, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if client.ready().status_code == 200:
            return
        time.sleep(0.5)
    raise AssertionError("the service did not become ready again")


@contextmanager
def _direct(url: str) -> Iterator[Database]:
    database = Database(url)
    try:
        yield database
    finally:
        database.dispose()


# --- item 15: refusals of the database are 503, and /readyz sees them ----------------------


def test_tag_write_sqlite_disk_full_is_503_and_not_ready(tmp_path, monkeypatch):
    """Item 15: the server may write no more bytes to its files (the file size limit, which
    SQLite meets as a full disk): tag writes and image creates are 503, /readyz is 503 while
    reads still work, and all heals when space is back."""
    key = Fernet.generate_key().decode()
    url = f"sqlite:///{tmp_path / 'full.db'}"
    upgrade(url)
    credential = _credential(url, key, uuid.uuid4().hex)
    with dedicated_server(url, tmp_path, key, SHORT_LIMITS, monkeypatch) as server:
        client = Client(server, credential)
        image = client.create_image()
        assert client.add_tag(image, "before").status_code == 204
        soft, hard = resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, (1, hard))
        try:
            for n in range(3):
                assert_error(client.add_tag(image, f"full-{n}"), 503, "IMG.0061")
            assert_error(client.request("POST", "/v2/images", {"name": "x" * 100}), 503)
            assert "refuses writes" in assert_error(client.ready(), 503, "IMG.0061")
            listed = client.request("GET", f"/v2/{client.project}/images/tags")
            assert listed.status_code == 200
        finally:
            resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, (soft, hard))
        _wait_until_ready(client)
        assert client.add_tag(image, "after").status_code == 204
    with _direct(url) as db:
        assert_aggregate_exact(db, credential.project_id)


def test_tag_write_postgres_read_only_is_503_and_not_ready(postgres_url, tmp_path, monkeypatch):
    """Item 15: PostgreSQL turns read-only under the server (as a standby does after a
    fail-over): writes are 503 ``IMG.0061``, /readyz is 503, and all heals afterwards."""
    key = Fernet.generate_key().decode()
    credential = _credential(postgres_url, key, uuid.uuid4().hex)
    with dedicated_server(postgres_url, tmp_path, key, SHORT_LIMITS, monkeypatch) as server:
        client = Client(server, credential)
        image = client.create_image()
        assert client.add_tag(image, "before").status_code == 204
        _set_read_only(postgres_url, True)
        try:
            assert_error(client.add_tag(image, "read-only"), 503, "IMG.0061")
            assert_error(client.request("POST", "/v2/images", {"name": "ro"}), 503, "IMG.0061")
            assert "refuses writes" in assert_error(client.ready(), 503, "IMG.0061")
        finally:
            _set_read_only(postgres_url, False)
        _wait_until_ready(client)
        assert client.add_tag(image, "after").status_code == 204
    with _direct(postgres_url) as db:
        assert_aggregate_exact(db, credential.project_id)


def _set_read_only(url: str, read_only: bool) -> None:
    """Every session of the database read-only (or not) from now on: the setting for new
    sessions, and the server's current sessions ended so that they reconnect under it."""
    target = make_url(url)
    conninfo = target.set(drivername="postgresql").render_as_string(hide_password=False)
    name = target.database
    with psycopg.connect(conninfo, autocommit=True) as connection:
        setting = "on" if read_only else "off"
        connection.execute("SET default_transaction_read_only = off")  # this session writes
        connection.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {setting}')
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )


# --- item 16: slow clients cannot hold the server --------------------------------------------

SLOW_CLIENT_LIMITS = {"IMSTAGS_HEAD_TIMEOUT_SECONDS": "1", "IMSTAGS_MAX_CONNECTIONS": "20"}


@pytest.fixture
def limited_server(settings, tmp_path, monkeypatch) -> Iterator[RunningServer]:
    url = settings.resolved_database_url
    with dedicated_server(url, tmp_path, settings.secret_key, SLOW_CLIENT_LIMITS, monkeypatch) as s:
        yield s


def _connect(server: RunningServer) -> socket.socket:
    port = int(server.base_url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD)


def _closed_by_server(sock: socket.socket, trickle: bool, limit: int = 100) -> bool:
    """Send one header byte every 0.2 s (at most ``limit`` times) until the server closes the
    connection; whether it did."""
    for _ in range(limit):
        try:
            if trickle:
                sock.sendall(b"a")
            sock.settimeout(0.2)
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


@pytest.mark.parametrize("after_a_request", [False, True])
def test_slow_request_head_connection_closed(limited_server, after_a_request):
    """Item 16: half a request head, then a byte now and then: the server closes the
    connection (on a fresh connection, and on a kept-alive one after a first request)."""
    with _connect(limited_server) as sock:
        if after_a_request:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        assert _closed_by_server(sock, trickle=True)
    assert httpx.get(limited_server.base_url + "/healthz").status_code == 200


def test_connections_past_the_cap_closed_and_service_resumes(limited_server):
    """Item 16: with the cap of open connections reached by idle half-heads, one more is
    closed at once; once the head deadline has cleared them, requests are answered again."""
    held = [_connect(limited_server) for _ in range(20)]
    try:
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        with _connect(limited_server) as extra:
            assert _closed_by_server(extra, trickle=False, limit=20)
        for sock in held:
            assert _closed_by_server(sock, trickle=False)
    finally:
        for sock in held:
            sock.close()
    assert httpx.get(limited_server.base_url + "/healthz").status_code == 200
