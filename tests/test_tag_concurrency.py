"""Many writers on a few shared images at once: the 10-tag limit and the aggregate must hold.

Threads, each with its own HTTP connection and SDK-signed requests, mix every tag-writing API
(batch create/delete, add, delete by key, native PUT/DELETE, PUT /v1/cloudimages/tags,
BatchDeleteTags) on three images of one project, against the real server: the session's
single-process server, and a two-process one (two processes on one database is how the service
is scaled). A reader meanwhile checks that no image is ever seen with more than 10 tags.
Afterwards no image has more than 10 tags and the ``tag_counts`` aggregate equals a full
recount. Every answer must be one the pages allow under contention: 204, 400 IMG.0116 (the
limit), 404 IMG.0115 (deleting a tag another writer deleted first); never a 5xx.

The request count is fixed (``WRITERS * REQUESTS_PER_WRITER``); nothing depends on timing.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import func, select

from imstags.domain.credentials import IssuedCredential
from imstags.domain.images import records as images_domain
from imstags.domain.tags import operations
from imstags.domain.tags.rules import MAX_TAGS_PER_IMAGE
from imstags.storage.models import ImageTag
from tests.conftest import new_project_id
from tests.support.aggregate import assert_aggregate_exact
from tests.support.clients import ims_client
from tests.support.server import start_server
from tests.support.signing import sdk_signed_headers
from tests.support.tagging import create_image

WRITERS = 8
REQUESTS_PER_WRITER = 30
IMAGES = 3
KEYS = [f"k{i}" for i in range(14)]  # more keys than the limit, so writers hit it
VALUES = ["a", "b", ""]
ALLOWED = {(204, None), (400, "IMG.0116"), (404, "IMG.0115")}


class Client:
    """One writer's connection: requests signed by the SDK's signer, sent as they are."""

    def __init__(self, base_url: str, credential: IssuedCredential) -> None:
        self.base_url = base_url
        self.credential = credential
        self.http = httpx.Client(timeout=60)

    def send(self, method: str, path: str, body: object | None = None) -> httpx.Response:
        content = b"" if body is None else json.dumps(body).encode()
        url = self.base_url + path
        headers = sdk_signed_headers(
            method, url, self.credential.access, self.credential.secret, body=content
        )
        return self.http.request(method, url, content=content, headers=headers)


def random_operation(rng: random.Random, project: str, image: str) -> tuple[str, str, object]:
    """One request of a random kind (method, path, body) on ``image``."""
    key, value = rng.choice(KEYS), rng.choice(VALUES)
    native = f"{key}={value}" if value else key
    pairs = [{"key": k, "value": rng.choice(VALUES)} for k in rng.sample(KEYS, rng.randint(1, 4))]
    v2 = f"/v2/{project}/images/{image}/tags"
    kind = rng.randrange(8)
    if kind == 0:
        return "POST", v2 + "/action", {"action": "create", "tags": pairs}
    if kind == 1:
        return "POST", v2 + "/action", {"action": "delete", "tags": pairs}
    if kind == 2:
        return "POST", v2, {"tag": {"key": key, "value": value}}
    if kind == 3:
        return "DELETE", f"{v2}/{key}", None
    if kind == 4:
        return "PUT", f"/v2/images/{image}/tags/{native}", None
    if kind == 5:
        return "DELETE", f"/v2/images/{image}/tags/{native}", None
    if kind == 6:
        return "PUT", "/v1/cloudimages/tags", {"image_id": image, "tag": f"{key}.{value}"}
    path = f"/v1/{project}/cloudimages/{image}/tags/delete"
    return "DELETE", path, {"tags": pairs}


def outcome(response: httpx.Response) -> tuple[int, str | None]:
    if response.status_code == 204:
        return 204, None
    try:
        return response.status_code, response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return response.status_code, response.text[:200]


def run_writers(base_url: str, credential: IssuedCredential, images: list[str]) -> Counter:
    project = credential.project_id
    outcomes: Counter = Counter()
    lock = threading.Lock()
    failures: list[BaseException] = []
    done = threading.Event()
    over_limit: list[tuple[str, int]] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        client = Client(base_url, credential)
        try:
            for _ in range(REQUESTS_PER_WRITER):
                method, path, body = random_operation(rng, project, rng.choice(images))
                result = outcome(client.send(method, path, body))
                with lock:
                    outcomes[result] += 1
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            client.http.close()

    def reader() -> None:
        client = Client(base_url, credential)
        try:
            while not done.is_set():
                for image in images:
                    tags = client.send("GET", f"/v2/{project}/images/{image}/tags").json()["tags"]
                    if len(tags) > MAX_TAGS_PER_IMAGE:
                        over_limit.append((image, len(tags)))
        except BaseException as exc:
            failures.append(exc)
        finally:
            client.http.close()

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(WRITERS)]
    watcher = threading.Thread(target=reader)
    for thread in [*threads, watcher]:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    watcher.join()
    assert failures == []
    assert over_limit == []
    return outcomes


def check_invariants(db, project_id: str) -> None:
    with db.read() as session:
        per_image = session.execute(
            select(ImageTag.image_id, func.count())
            .where(ImageTag.project_id == project_id)
            .group_by(ImageTag.image_id)
        ).all()
        assert all(count <= MAX_TAGS_PER_IMAGE for _, count in per_image), per_image
    assert_aggregate_exact(db, project_id)


@pytest.fixture(params=["one-process", "two-processes"])
def base_url(request, server, settings, tmp_path) -> Iterator[str]:
    if request.param == "one-process":
        yield server.base_url
    else:
        with start_server(settings, tmp_path / "server.log", workers=2) as running:
            yield running.base_url


@pytest.fixture
def writers_credential(make_credential: Callable[[str], IssuedCredential]) -> IssuedCredential:
    return make_credential(new_project_id())


def test_concurrent_tag_writers_keep_limit_and_aggregate(base_url, writers_credential, db):
    ims = ims_client(base_url, writers_credential)
    images = [create_image(ims) for _ in range(IMAGES)]

    outcomes = run_writers(base_url, writers_credential, images)

    unexpected = {result: n for result, n in outcomes.items() if result not in ALLOWED}
    assert unexpected == {}
    assert sum(outcomes.values()) == WRITERS * REQUESTS_PER_WRITER
    assert outcomes[(204, None)] > 0
    assert outcomes[(400, "IMG.0116")] > 0  # the limit was really contended
    check_invariants(db, writers_credential.project_id)


def test_concurrent_value_swaps_take_counter_locks_in_one_order(db, caplog):
    """Writers that move images between two values of one key touch the same two counter rows
    in opposite directions (one -1 and one +1 each). Taking counter rows in one global order
    means no transaction ever waits for another that waits for it: no deadlock on PostgreSQL,
    so no retried transaction (Database.write logs each retry)."""
    project = new_project_id()
    images = [
        db.write(lambda s: images_domain.create_image_tx(s, project, {}, ["k=a"], {})).image.id
        for _ in range(4)
    ]
    failures: list[BaseException] = []

    def swapper(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(40):
                image = rng.choice(images)
                value = rng.choice(["a", "b"])
                db.write_tags(
                    operations.plan_batch_action(
                        project, image, "create", [("k", value), ("j", value)]
                    )
                )
        except BaseException as exc:
            failures.append(exc)

    caplog.set_level(logging.INFO, logger="imstags.storage.database")
    threads = [threading.Thread(target=swapper, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert retries == []
    check_invariants(db, project)
