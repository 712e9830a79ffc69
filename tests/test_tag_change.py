"""A tag write has one meaning whichever way it runs: PostgreSQL's one-statement function
(``imstags_change_tags``, migration 0006) answers as the Python write path does.

Every case plans a request with the domain's ``plan_*`` functions and runs it through the
service (the function on PostgreSQL, the writer thread on SQLite) and through the Python path
(``Database.write_tags``) on two images with the same tags: same error class and message, same
tags afterwards, the version bumped exactly when something changed, the aggregate exact. The
concurrency cases hammer one image over HTTP: no update is lost, the limit is never passed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx
import pytest
from alembic import command
from sqlalchemy import create_engine, literal_column, select, text
from sqlalchemy.dialects import postgresql

from imstags.domain.images.records import create_image_tx
from imstags.domain.tags import operations
from imstags.domain.tags.change import TagChange
from imstags.domain.tags.rules import MAX_TAGS_PER_IMAGE
from imstags.domain.tags.write_path import image_tags
from imstags.services.tags import TagService
from imstags.services.writes import WriteRunner
from imstags.storage.database import Database, normalise_url
from imstags.storage.migrate import alembic_config, upgrade
from imstags.storage.models import Image, TagVersion
from imstags.storage.visibility import image_for_write
from tests.conftest import new_project_id
from tests.support.aggregate import assert_aggregate_exact
from tests.support.databases import empty_test_database
from tests.support.signing import sdk_signed_headers

T = TypeVar("T")
TEN = [f"t{n}=v" for n in range(MAX_TAGS_PER_IMAGE)]
MISSING_IMAGE = "00000000-0000-0000-0000-000000000000"


def _run(db: Database, work: Coroutine[Any, Any, T]) -> T:
    """``work`` on an event loop of its own, closing the loop's database connections after."""

    async def main() -> T:
        try:
            return await work
        finally:
            await db.close_async()

    return asyncio.run(main())


def _outcome(call: Callable[[], object]) -> tuple[str, str] | None:
    try:
        call()
    except Exception as exc:  # noqa: BLE001  (the class and message are what is compared)
        return type(exc).__name__, str(exc)
    return None


def _version(db: Database, project: str) -> int:
    with db.read() as session:
        found = session.scalar(select(TagVersion.version).where(TagVersion.project_id == project))
    return int(found or 0)


def _tags(db: Database, image: str) -> dict[str, str]:
    with db.read() as session:
        return image_tags(session, image)


# (tags the image starts with, the request as a plan_* call on (project, image)), and the
# answer expected: None for success, else the error's class and message.
CASES: list[tuple[str, list[str], Callable[[str, str], TagChange], tuple[str, str] | None]] = [
    ("add, trimmed", ["k=v"], lambda p, i: operations.plan_add_tag(p, i, " a ", " b "), None),
    ("overwrite", ["k=v"], lambda p, i: operations.plan_add_tag(p, i, "k", "w"), None),
    ("same again", ["k=v"], lambda p, i: operations.plan_add_tag(p, i, "k", "v"), None),
    (
        "eleventh",
        TEN,
        lambda p, i: operations.plan_native_add(p, i, "new=x"),
        (
            "TagQuotaExceeded",
            "An image can have at most 10 tags; this request would leave it with 11.",
        ),
    ),
    ("at the limit, unchanged", TEN, lambda p, i: operations.plan_add_tag(p, i, "t1", "v"), None),
    ("at the limit, new value", TEN, lambda p, i: operations.plan_add_tag(p, i, "t1", "w"), None),
    (
        "batch of three past the limit",
        TEN[:9],
        lambda p, i: operations.plan_batch_action(
            p, i, "create", [("x", "1"), ("y", "2"), ("t0", "z")]
        ),
        (
            "TagQuotaExceeded",
            "An image can have at most 10 tags; this request would leave it with 11.",
        ),
    ),
    (
        "delete by filters",
        ["a=1", "b=2", "c=3", "d"],
        lambda p, i: operations.plan_batch_action(
            p, i, "delete", [(" a ", " 1 "), ("b", "9"), ("c", None), ("nope", None)]
        ),
        None,
    ),
    (
        "batch delete, nothing matches",
        ["a=1"],
        lambda p, i: operations.plan_batch_delete(p, i, [("a", "2"), ("b", None)]),
        None,
    ),
    ("delete key", ["a=1", "b"], lambda p, i: operations.plan_delete_key(p, i, "a"), None),
    (
        "delete missing key",
        ["a=1"],
        lambda p, i: operations.plan_delete_key(p, i, "zz"),
        ("TagNotFound", "The image has no tag with the key 'zz'."),
    ),
    (
        "native delete k=v",
        ["k=v", "j"],
        lambda p, i: operations.plan_native_delete(p, i, "k=v"),
        None,
    ),
    (
        "native delete key-only",
        ["k", "j=1"],
        lambda p, i: operations.plan_native_delete(p, i, "k"),
        None,
    ),
    (
        "native delete, other value",
        ["k=w"],
        lambda p, i: operations.plan_native_delete(p, i, "k=v"),
        ("TagNotFound", "The image has no tag 'k=v'."),
    ),
    (
        "native delete, key has a value",
        ["k=w"],
        lambda p, i: operations.plan_native_delete(p, i, "k"),
        ("TagNotFound", "The image has no tag 'k'."),
    ),
    (
        "put dotted",
        ["é=ü"],
        lambda p, i: operations.plan_add_or_modify(p, i, None, ("Zeta", "ß")),
        None,
    ),
    (
        "unicode keys both ways",
        ["B=1", "a=1", "é=1"],
        lambda p, i: operations.plan_batch_action(
            p, i, "create", [("B", "2"), ("a", "2"), ("é", "2"), ("Ä", "")]
        ),
        None,
    ),
]


def _as_dict(tags: list[str]) -> dict[str, str]:
    return {key: value for key, _, value in (tag.partition("=") for tag in tags)}


def _image(db: Database, project: str, tags: list[str]) -> str:
    return db.write(lambda s: create_image_tx(s, project, {"name": "x"}, tags, {})).image.id


@pytest.mark.parametrize(
    ("start", "plan", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_service_and_python_path_give_the_same_answer(db, start, plan, expected):
    """Given two images with the same tags, when the same request runs through the service
    (PostgreSQL: one function call) and through the Python write path, then both answer the
    expected outcome with the same message, leave the same tags, bump the version only when
    something changed, and keep the aggregate exact."""
    project = new_project_id()
    by_service, by_python = _image(db, project, start), _image(db, project, start)
    service = TagService(db, WriteRunner(db, threads=1, deadline=30))

    before = _version(db, project)
    got_service = _outcome(lambda: _run(db, service._write(plan(project, by_service))))
    after_service = _version(db, project)
    got_python = _outcome(lambda: db.write_tags(plan(project, by_python)))
    after_python = _version(db, project)

    assert got_service == got_python == expected
    assert _tags(db, by_service) == _tags(db, by_python)
    changed = _tags(db, by_service) != _as_dict(start)
    assert after_service - before == after_python - after_service == int(changed)
    assert_aggregate_exact(db, project)


def test_image_of_another_project_or_missing_is_not_found_both_ways(db):
    owner, other = new_project_id(), new_project_id()
    image = _image(db, owner, ["k=v"])
    service = TagService(db, WriteRunner(db, threads=1, deadline=30))
    for project, image_id in ((other, image), (owner, MISSING_IMAGE)):
        change = operations.plan_add_tag(project, image_id, "a", "b")
        assert _outcome(lambda c=change: _run(db, service._write(c))) == (
            "ImageNotFound",
            "The image does not exist.",
        )
        assert _outcome(lambda c=change: db.write_tags(c)) == (
            "ImageNotFound",
            "The image does not exist.",
        )
    assert _tags(db, image) == {"k": "v"}


# --- concurrency, over HTTP -------------------------------------------------------------------


def _send(http: httpx.Client, base_url: str, credential, method: str, path: str, body=None):
    content = b"" if body is None else json.dumps(body).encode()
    url = base_url + path
    headers = sdk_signed_headers(method, url, credential.access, credential.secret, body=content)
    return http.request(method, url, content=content, headers=headers)


def _in_threads(count: int, work: Callable[[int], T]) -> list[T]:
    results: list[Any] = [None] * count
    failures: list[BaseException] = []
    start = threading.Barrier(count)

    def run(n: int) -> None:
        try:
            start.wait()
            results[n] = work(n)
        except BaseException as exc:  # noqa: BLE001  (reported below)
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    return results


def test_concurrent_adds_to_one_image_lose_nothing_and_stop_at_the_limit(
    server, make_credential, db
):
    """Given one image, when twelve clients at once each add a key of their own (rounds of
    them, the image emptied in between), then every round exactly ten succeed, two are refused
    with IMG.0116, and the image holds exactly the ten keys that succeeded: no write was lost
    to another's stale read, and the limit held."""
    credential = make_credential(new_project_id())
    project = credential.project_id
    image = _image(db, project, [])
    v2 = f"/v2/{project}/images/{image}/tags"
    clients = [httpx.Client(timeout=60) for _ in range(12)]
    try:
        for round_number in range(4):

            def add(n: int, r: int = round_number) -> tuple[str, int]:
                key = f"r{r}w{n}"
                body = {"tag": {"key": key, "value": "v"}}
                return key, _send(
                    clients[n], server.base_url, credential, "POST", v2, body
                ).status_code

            results = _in_threads(12, add)
            succeeded = {key for key, status in results if status == 204}
            assert sorted(status for _, status in results) == [204] * 10 + [400] * 2
            assert set(_tags(db, image)) == succeeded
            remove = [{"key": key} for key in succeeded]
            response = _send(
                clients[0],
                server.base_url,
                credential,
                "POST",
                v2 + "/action",
                {"action": "delete", "tags": remove},
            )
            assert response.status_code == 204, response.text
            assert _tags(db, image) == {}
    finally:
        for client in clients:
            client.close()
    assert_aggregate_exact(db, project)


def test_mixed_writers_both_paths_one_lock_order_exact_aggregate(db, caplog):
    """Given four images of one project, when threads write through the Python path and
    asyncio tasks through the service at the same time, moving images between values whose
    order differs between code points and a natural-language collation ('B' < 'a' < 'é'),
    then no transaction deadlocks (nothing is retried: every writer takes counter rows in one
    order) and the aggregate equals a full recount."""
    project = new_project_id()
    images = [_image(db, project, ["a=1"]) for _ in range(4)]
    keys, values = ["B", "a", "é", "Z"], ["1", "é", "A"]

    def plan(rng: random.Random) -> TagChange:
        pairs = [(key, rng.choice(values)) for key in rng.sample(keys, 2)]
        if rng.random() < 0.3:
            return operations.plan_batch_action(project, rng.choice(images), "delete", pairs)
        return operations.plan_batch_action(project, rng.choice(images), "create", pairs)

    caplog.set_level(logging.INFO, logger="imstags.storage")
    service = TagService(db, WriteRunner(db, threads=1, deadline=30))

    async def tasks() -> None:
        async def writer(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(40):
                await service._write(plan(rng))

        await asyncio.gather(*(writer(seed) for seed in range(100, 108)))

    def threads() -> None:
        def writer(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(40):
                db.write_tags(plan(rng))

        _in_threads(4, writer)

    side = threading.Thread(target=threads)
    side.start()
    _run(db, tasks())
    side.join()

    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert retries == []
    assert_aggregate_exact(db, project)


# --- the function itself ----------------------------------------------------------------------


def test_function_locks_the_image_with_the_orms_statement(db):
    """The function's lock is the ORM's ``image_for_write`` statement, word for word: one
    visibility rule and one lock, whichever path writes."""
    if db.is_sqlite:
        pytest.skip("the function exists on PostgreSQL only")
    lock = image_for_write(
        literal_column("v_project_id"),
        literal_column("v_image_id"),
        Image.project_id,
        Image.created_at,
    )
    expected = " ".join(str(lock.compile(dialect=postgresql.dialect())).split())
    with db.engine.connect() as connection:
        body = connection.execute(
            text("SELECT prosrc FROM pg_proc WHERE proname = 'imstags_change_tags'")
        ).scalar_one()
    assert expected in " ".join(body.split())


def test_migration_0006_creates_and_drops_the_function(tmp_path):
    """Upgrading to 0006 creates the function on PostgreSQL (and changes nothing on SQLite);
    downgrading drops it; upgrading again works."""
    with empty_test_database(tmp_path) as url:
        engine = create_engine(normalise_url(url))

        def present() -> bool:
            if engine.dialect.name == "sqlite":
                return False
            with engine.connect() as connection:
                return bool(
                    connection.execute(
                        text("SELECT count(*) FROM pg_proc WHERE proname = 'imstags_change_tags'")
                    ).scalar()
                )

        upgrade(url, "0005")
        assert not present()
        upgrade(url, "0006")
        assert present() is (engine.dialect.name == "postgresql")
        command.downgrade(alembic_config(url), "0005")
        assert not present()
        upgrade(url)
        assert present() is (engine.dialect.name == "postgresql")
        engine.dispose()


def test_a_change_the_database_refuses_fails_alone_in_its_batch(db):
    """Given changes sent at once (so batched together on PostgreSQL), one of them with a value
    the column cannot hold (as no validated request has), when they run, then that one gets the
    database's error and every other change is written."""
    if db.is_sqlite:
        pytest.skip("batches are PostgreSQL's")
    project = new_project_id()
    images = [_image(db, project, []) for _ in range(6)]

    async def send() -> list[object]:
        calls = [
            db.change_tags(
                project,
                image,
                upserts={"k": "v" * (300 if n == 3 else 1)},
                removals=(),
                required=None,
                max_tags=MAX_TAGS_PER_IMAGE,
            )
            for n, image in enumerate(images)
        ]
        return await asyncio.gather(*calls, return_exceptions=True)

    answers = _run(db, send())
    assert [type(a).__name__ for a in answers] == ["TagChangeOutcome"] * 3 + [
        "StringDataRightTruncationError"
    ] + ["TagChangeOutcome"] * 2
    assert [_tags(db, image) for image in images] == [{"k": "v"}] * 3 + [{}] + [{"k": "v"}] * 2
    assert_aggregate_exact(db, project)


def test_changes_of_one_image_in_one_batch_apply_in_order(db):
    """Given one image, when many changes of it are sent at once (batched on PostgreSQL), then
    each sees the ones before it, as one after the other would: the answers and the final tags
    are those of running them in order."""
    project = new_project_id()
    image = _image(db, project, [])
    service = TagService(db, WriteRunner(db, threads=1, deadline=30))
    plans = [operations.plan_add_tag(project, image, f"k{n}", "v") for n in range(12)]
    plans.append(operations.plan_delete_key(project, image, "k0"))
    plans.append(operations.plan_delete_key(project, image, "k0"))

    async def send() -> list[object]:
        return await asyncio.gather(
            *(service._write(plan) for plan in plans), return_exceptions=True
        )

    answers = [None if a is None else type(a).__name__ for a in _run(db, send())]
    assert answers == [None] * 10 + ["TagQuotaExceeded"] * 2 + [None, "TagNotFound"]
    assert _tags(db, image) == {f"k{n}": "v" for n in range(1, 10)}
    assert_aggregate_exact(db, project)
