"""Database faults: a lost PostgreSQL is 503 with the error body within a bounded time,
/readyz says not ready, and service resumes by itself; write contention is never a 500.

The PostgreSQL tests put a TCP proxy of their own between a dedicated server and a fresh
database, and cut the proxy, never the PostgreSQL server the other tests share. They need a
PostgreSQL server: ``IMSTAGS_TEST_DATABASE_URL``, else the one the Makefile uses, in both the
SQLite and the PostgreSQL runs of the suite (faults of a network database are what they test).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from imstags.domain.credentials import IssuedCredential, create_credential_tx
from imstags.domain.secrets import SecretBox
from imstags.settings import Settings
from imstags.storage.database import Database
from imstags.storage.migrate import upgrade
from tests.support.aggregate import assert_aggregate_exact
from tests.support.databases import temporary_postgres_database
from tests.support.http import assert_error, signed_request
from tests.support.server import RunningServer, start_server
from tests.support.tcp_proxy import TcpProxy, tcp_proxy

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
# A guard against hangs, not a speed assertion: the service's own bound is the database
# connect timeout (5 s); a request that has no answer after this long is hung.
HANG_GUARD = 30.0


class Setup:
    def __init__(self, server: RunningServer, proxy: TcpProxy, credential: IssuedCredential):
        self.server = server
        self.proxy = proxy
        self.credential = credential

    def get_tags(self) -> httpx.Response:
        path = f"/v2/{self.credential.project_id}/images/tags"
        return signed_request(
            self.server.base_url, self.credential, "GET", path, timeout=HANG_GUARD
        )

    def create_image(self, name: str) -> httpx.Response:
        body = json.dumps({"name": name, "tags": ["fault=test"]}).encode()
        return signed_request(
            self.server.base_url,
            self.credential,
            "POST",
            "/v2/images",
            body=body,
            timeout=HANG_GUARD,
        )

    def ready(self) -> httpx.Response:
        return httpx.get(self.server.base_url + "/readyz", timeout=HANG_GUARD)

    def wait_until_ready(self, limit: float = 60.0) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.ready().status_code == 200:
                return
            time.sleep(0.5)
        raise AssertionError("the service did not become ready again")


@pytest.fixture
def behind_proxy(tmp_path) -> Iterator[Setup]:
    server_url = os.environ.get("IMSTAGS_TEST_DATABASE_URL") or DEFAULT_POSTGRES
    with temporary_postgres_database(server_url) as direct_url:
        upgrade(direct_url)
        url = make_url(direct_url)
        key = Fernet.generate_key().decode()
        direct = Database(direct_url)
        project = uuid.uuid4().hex
        credential = direct.write(lambda s: create_credential_tx(s, SecretBox(key), project))
        direct.dispose()
        with tcp_proxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
            proxied = url.set(host="127.0.0.1", port=proxy.port)
            settings = Settings(
                database_url=proxied.render_as_string(hide_password=False),
                data_dir=tmp_path,
                secret_key=key,
                credential_cache_seconds=0,
            )
            with start_server(settings, tmp_path / "server.log", startup_timeout=120) as server:
                yield Setup(server, proxy, credential)


@pytest.mark.parametrize("mode", ["down", "blackhole"])
def test_list_images_tags_database_lost_returns_503_then_recovers(behind_proxy, mode):
    setup = behind_proxy
    assert setup.get_tags().status_code == 200
    assert setup.ready().status_code == 200

    setup.proxy.set_mode(mode)
    assert_error(setup.get_tags(), 503, "IMG.0061")
    assert_error(setup.create_image("during-outage"), 503, "IMG.0061")
    not_ready = setup.ready()
    assert "Not ready" in assert_error(not_ready, 503, "IMG.0061")
    assert httpx.get(setup.server.base_url + "/healthz").status_code == 200  # still alive

    setup.proxy.set_mode("up")
    setup.wait_until_ready()
    assert setup.get_tags().status_code == 200
    created = setup.create_image("after-outage")
    assert created.status_code == 201, created.text
    names = {image["name"] for image in _list_images(setup)}
    assert "after-outage" in names
    assert "during-outage" not in names  # a 503 wrote nothing


def test_list_images_tags_database_flapping_never_returns_500(behind_proxy):
    """Cut and restore the database repeatedly while requests run: each answer is 2xx or
    503 with the error body, never a 500 and never a hang."""
    setup = behind_proxy
    statuses: Counter[int] = Counter()
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            response = setup.get_tags()
            statuses[response.status_code] += 1
            if response.status_code != 200:
                assert_error(response, 503, "IMG.0061")

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(4):
            time.sleep(0.4)
            setup.proxy.set_mode("down")
            time.sleep(0.4)
            setup.proxy.set_mode("up")
    finally:
        stop.set()
        for thread in threads:
            thread.join(HANG_GUARD)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] > 0
    setup.wait_until_ready()


def _list_images(setup: Setup) -> list[dict]:
    response = signed_request(
        setup.server.base_url, setup.credential, "GET", "/v2/images", timeout=HANG_GUARD
    )
    assert response.status_code == 200, response.text
    return list(response.json()["images"])


def test_batch_tags_action_concurrent_writers_two_workers_never_500(
    settings, db, make_credential, tmp_path
):
    """Six clients write tags to the same few images through two worker processes (real
    lock contention on SQLite's single writer, row locks on PostgreSQL): every answer is 2xx
    or a documented 4xx, and the aggregate equals a full recount afterwards."""
    project = uuid.uuid4().hex
    credential = make_credential(project)
    with start_server(settings, tmp_path / "workers.log", workers=2, startup_timeout=180) as server:
        images = []
        for i in range(3):
            body = json.dumps({"name": f"contended-{i}"}).encode()
            response = signed_request(server.base_url, credential, "POST", "/v2/images", body=body)
            assert response.status_code == 201, response.text
            images.append(response.json()["id"])
        statuses: Counter[int] = Counter()
        lock = threading.Lock()

        def writer(worker: int) -> None:
            for n in range(10):
                image = images[(worker + n) % len(images)]
                action = "create" if n % 3 else "delete"
                tag = {"key": f"k{(worker * 7 + n) % 12}", "value": f"v{n % 4}"}
                body = json.dumps({"action": action, "tags": [tag]}).encode()
                path = f"/v2/{project}/images/{image}/tags/action"
                response = signed_request(server.base_url, credential, "POST", path, body=body)
                with lock:
                    statuses[response.status_code] += 1

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert sum(statuses.values()) == 6 * 10
    assert all(status < 500 for status in statuses), statuses
    assert statuses[204] > 0
    assert_aggregate_exact(db, project)


def test_database_pool_exhausted_is_503_not_500(settings, db):
    """A request that finds no free connection within pool_timeout is told to come back."""
    from sqlalchemy import text

    from imstags.errors import ServiceUnavailable
    from imstags.storage.database import Database

    small = Database(settings.resolved_database_url, pool_size=1, pool_timeout=0.2)
    select_one = text("SELECT 1")
    try:
        # The pool holds two connections (size 1 + overflow 1); both are taken here.
        with small.read() as first, small.read() as second:
            first.execute(select_one)
            second.execute(select_one)
            with pytest.raises(ServiceUnavailable) as caught, small.read() as third:
                third.execute(select_one)
        assert caught.value.status == 503
        with small.read() as again:  # served again once connections are back
            assert again.execute(select_one).scalar() == 1
    finally:
        small.dispose()
