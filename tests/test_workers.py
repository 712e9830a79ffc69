"""Several server processes on one database: a write through any of them is seen at once by
the core endpoint of every other, although each caches the body (keyed by the project's
version, read on every request) and the AK/SK secrets.

Two ways: two separate single-worker servers (each request goes where the test sends it), and
one ``imstags serve --workers 2``, where the test finds out which worker holds each of its
connections (through /proc) so that it provably writes through one and reads through the other.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from benchmarks.processes import owner_pid, process_tree

from tests.support.server import RunningServer, start_server
from tests.support.signing import sdk_signed_headers


class Connection:
    """One kept-alive HTTP connection, signed requests over it."""

    def __init__(self, server: RunningServer, credential) -> None:
        self.base_url = server.base_url
        host, port = server.base_url.removeprefix("http://").split(":")
        self.http = http.client.HTTPConnection(host, int(port), timeout=30)
        self.http.connect()
        self.credential = credential

    @property
    def client_port(self) -> int:
        return int(self.http.sock.getsockname()[1])

    def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        headers = sdk_signed_headers(
            method, self.base_url + path, self.credential.access, self.credential.secret,
            body=body,
        )  # fmt: skip
        self.http.request(method, path, body=body or None, headers=headers)
        response = self.http.getresponse()
        return response.status, response.read()

    def summary(self) -> dict[str, list[str]]:
        status, body = self.request("GET", f"/v2/{self.credential.project_id}/images/tags")
        assert status == 200, body
        return {tag["key"]: tag["values"] for tag in json.loads(body)["tags"]}

    def create_image(self, *tags: str) -> str:
        status, body = self.request("POST", "/v2/images", json.dumps({"tags": list(tags)}).encode())
        assert status == 201, body
        return str(json.loads(body)["id"])

    def tags_action(self, image_id: str, action: str, tags: dict[str, str]) -> None:
        body = json.dumps(
            {"action": action, "tags": [{"key": k, "value": v} for k, v in tags.items()]}
        ).encode()
        path = f"/v2/{self.credential.project_id}/images/{image_id}/tags/action"
        status, answer = self.request("POST", path, body)
        assert status == 204, answer

    def delete_image(self, image_id: str) -> None:
        status, body = self.request("DELETE", f"/v2/images/{image_id}")
        assert status == 204, body

    def close(self) -> None:
        self.http.close()


def assert_each_write_seen_by_the_other(first: Connection, second: Connection) -> None:
    image = first.create_image("env=prod")
    # Both processes have the body cached at the same version before each write.
    assert first.summary() == second.summary() == {"env": ["prod"]}
    first.tags_action(image, "create", {"env": "staging", "team": "a"})
    assert second.summary() == {"env": ["staging"], "team": ["a"]}
    assert first.summary() == {"env": ["staging"], "team": ["a"]}
    second.tags_action(image, "delete", {"team": "a"})
    assert first.summary() == {"env": ["staging"]}
    other = second.create_image("env=dev")
    assert first.summary() == {"env": ["dev", "staging"]}
    first.delete_image(other)
    assert second.summary() == {"env": ["staging"]}
    second.delete_image(image)
    assert first.summary() == second.summary() == {}


@pytest.fixture
def two_servers(settings, db, tmp_path) -> Iterator[tuple[RunningServer, RunningServer]]:
    with ExitStack() as stack:
        servers = [
            stack.enter_context(start_server(settings, tmp_path / f"s{i}.log")) for i in (1, 2)
        ]
        yield servers[0], servers[1]


def test_list_images_tags_write_through_one_server_seen_by_another(two_servers, credential):
    first, second = (Connection(server, credential) for server in two_servers)
    try:
        assert_each_write_seen_by_the_other(first, second)
    finally:
        first.close()
        second.close()


def test_list_images_tags_write_through_one_worker_seen_by_another(
    settings, db, credential, tmp_path
):
    with start_server(settings, tmp_path / "workers.log", workers=2) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        by_worker: dict[int, Connection] = {}
        opened: list[Connection] = []
        try:
            # Each worker listens once its app is built (the server answers once one has), so
            # the second may take a few seconds; a connection goes only to a listening worker.
            deadline = time.monotonic() + 60
            while len(by_worker) < 2:
                assert time.monotonic() < deadline, "every connection landed on the same worker"
                connection = Connection(server, credential)
                opened.append(connection)
                connection.summary()  # the worker has accepted the connection once it answers
                owner = owner_pid(process_tree(server.process.pid), port, connection.client_port)
                assert owner is not None, "no worker holds the connection"
                by_worker.setdefault(owner, connection)
                if len(opened) % 16 == 0:
                    time.sleep(0.5)
            first, second = by_worker.values()
            assert_each_write_seen_by_the_other(first, second)
        finally:
            for connection in opened:
                connection.close()
