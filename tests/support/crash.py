"""Kill the server with SIGKILL under concurrent writers, restart it, and check what survived.

Shared by ``tests/test_crash_safety.py`` (one short round) and ``benchmarks/crash_safety.py``
(several longer rounds on both databases). Each writer thread repeatedly:

- creates an image with a client-chosen id and two tags (``POST /v2/images``);
- overwrites a ``state`` tag on its own long-lived image (``POST .../tags/action``);
- every few rounds deletes one of its earlier images (``DELETE /v2/images/{id}``).

After the kill and a restart on the same database, every write answered 2xx must be there in
full (an acknowledged delete: gone), every write that got no answer must be either wholly there
or wholly absent (never an image without its tags), each ``state`` tag must hold the last
acknowledged value or the one in flight at the kill, and the tag aggregate must equal a full
recount.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import select

from imstags.domain.credentials import IssuedCredential
from imstags.settings import Settings
from imstags.storage.database import Database
from imstags.storage.models import Image, ImageTag
from tests.support.aggregate import aggregate_is_exact
from tests.support.http import signed_request
from tests.support.server import start_server


@dataclass
class WriterLog:
    created: dict[str, dict[str, str]] = field(default_factory=dict)  # acked: id -> tags
    deleted: set[str] = field(default_factory=set)  # acked deletes
    unknown_creates: dict[str, dict[str, str]] = field(default_factory=dict)
    unknown_deletes: set[str] = field(default_factory=set)
    state_image: str = ""
    state_acked: str | None = None
    state_unknown: set[str] = field(default_factory=set)
    state_writes: int = 0  # acknowledged overwrites of the state tag
    attempted: int = 0
    acknowledged: int = 0
    refused: int = 0  # a 4xx/5xx answer: the write did not happen


@dataclass
class CrashReport:
    attempted: int = 0
    acknowledged: int = 0
    acknowledged_found: int = 0
    refused: int = 0
    unanswered: int = 0
    unanswered_applied: int = 0
    unanswered_not_applied: int = 0
    problems: list[str] = field(default_factory=list)
    aggregate_exact: bool = False

    def add(self, other: CrashReport) -> None:
        for name in (
            "attempted", "acknowledged", "acknowledged_found", "refused", "unanswered",
            "unanswered_applied", "unanswered_not_applied",
        ):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.problems += other.problems
        self.aggregate_exact = self.aggregate_exact and other.aggregate_exact

    def summary(self) -> str:
        return (
            f"writes attempted: {self.attempted}, acknowledged (2xx): {self.acknowledged}, "
            f"acknowledged and found after restart: {self.acknowledged_found}, "
            f"refused (4xx/5xx): {self.refused}, unanswered at the kill: {self.unanswered} "
            f"(applied whole: {self.unanswered_applied}, "
            f"not applied: {self.unanswered_not_applied}), "
            f"aggregate equals recount: {self.aggregate_exact}, problems: {len(self.problems)}"
        )


def _write_loop(
    base_url: str,
    credential: IssuedCredential,
    log: WriterLog,
    stop: threading.Event,
    writer: int,
) -> None:
    project = credential.project_id
    n = 0
    while not stop.is_set():
        n += 1
        # 1. a new image with two tags
        image_id = str(uuid.uuid4())
        tags = {"crash": f"w{writer}", "seq": str(n)}
        body = json.dumps({"id": image_id, "name": f"crash-{writer}-{n}", "tags": [
            f"{k}={v}" for k, v in tags.items()
        ]}).encode()  # fmt: skip
        if not _send(base_url, credential, "POST", "/v2/images", body, log, 201):
            log.unknown_creates[image_id] = tags
            return
        log.created[image_id] = tags
        # 2. overwrite the state tag on the writer's own image
        value = str(n)
        body = json.dumps({"action": "create", "tags": [{"key": "state", "value": value}]}).encode()
        path = f"/v2/{project}/images/{log.state_image}/tags/action"
        if not _send(base_url, credential, "POST", path, body, log, 204):
            log.state_unknown.add(value)
            return
        log.state_acked = value
        log.state_writes += 1
        # 3. now and then, delete an earlier image
        if n % 4 == 0:
            victim = next(iter(i for i in log.created if i not in log.deleted), None)
            if victim is not None:
                if not _send(base_url, credential, "DELETE", f"/v2/images/{victim}", b"", log, 204):
                    log.unknown_deletes.add(victim)
                    return
                log.deleted.add(victim)


def _send(
    base_url: str,
    credential: IssuedCredential,
    method: str,
    path: str,
    body: bytes,
    log: WriterLog,
    expected: int,
) -> bool:
    """True when acknowledged; False when unanswered (the server died). A refusal is counted
    and raises: the workload is valid, so a refusal is itself a finding."""
    log.attempted += 1
    try:
        response = signed_request(base_url, credential, method, path, body=body, timeout=30)
    except httpx.TransportError:
        return False
    if response.status_code != expected:
        log.refused += 1
        raise AssertionError(f"{method} {path} answered {response.status_code}: {response.text}")
    log.acknowledged += 1
    return True


def crash_round(
    settings: Settings,
    db: Database,
    credential: IssuedCredential,
    *,
    writers: int,
    seconds: float,
    log_dir: Path,
) -> CrashReport:
    """One round: start, write concurrently, SIGKILL mid-stream, restart, verify."""
    logs = [WriterLog() for _ in range(writers)]
    with start_server(
        settings, log_dir / f"before-{uuid.uuid4().hex[:6]}.log", startup_timeout=120
    ) as server:
        for log in logs:
            body = json.dumps({"name": "state-holder"}).encode()
            response = signed_request(server.base_url, credential, "POST", "/v2/images", body=body)
            assert response.status_code == 201, response.text
            log.state_image = response.json()["id"]
        stop = threading.Event()
        errors: list[BaseException] = []

        def run(i: int) -> None:
            try:
                _write_loop(server.base_url, credential, logs[i], stop, i)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(writers)]
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        server.process.send_signal(signal.SIGKILL)  # mid-stream: writers are still sending
        server.process.wait()
        stop.set()
        for thread in threads:
            thread.join(60)
    if errors:
        raise errors[0]
    # Restart on the same database (recovery runs on open), then verify.
    with start_server(
        settings, log_dir / f"after-{uuid.uuid4().hex[:6]}.log", startup_timeout=120
    ) as server:
        ready = httpx.get(server.base_url + "/readyz", timeout=30)
        assert ready.status_code == 200, ready.text
        return verify(db, credential, logs, server.base_url)


def verify(
    db: Database, credential: IssuedCredential, logs: list[WriterLog], base_url: str
) -> CrashReport:
    report = CrashReport()
    project = credential.project_id
    with db.read() as session:
        rows = session.execute(
            select(ImageTag.image_id, ImageTag.key, ImageTag.value).where(
                ImageTag.project_id == project
            )
        ).all()
        images = set(session.scalars(select(Image.id).where(Image.project_id == project)))
    report.aggregate_exact = aggregate_is_exact(db, project)
    tags: dict[str, dict[str, str]] = {}
    for image_id, key, value in rows:
        tags.setdefault(image_id, {})[key] = value
    for log in logs:
        report.attempted += log.attempted
        report.acknowledged += log.acknowledged
        report.refused += log.refused
        found = 0  # acknowledged writes whose effect is there
        for image_id, expected in log.created.items():
            if image_id in log.deleted:
                if image_id not in images:
                    found += 2  # the create, and the delete that followed it
                else:
                    report.problems.append(f"acknowledged delete of {image_id} undone")
            elif image_id in log.unknown_deletes:
                found += 1  # either outcome of the delete in flight is right
            elif image_id in images and tags.get(image_id) == expected:
                found += 1
            else:
                report.problems.append(
                    f"acknowledged image {image_id}: expected {expected}, "
                    f"found {'no image' if image_id not in images else tags.get(image_id)}"
                )
        state = tags.get(log.state_image, {}).get("state")
        allowed = ({log.state_acked} if log.state_acked is not None else {None}) | (
            log.state_unknown
        )
        if state in allowed:
            # Each acknowledged overwrite is superseded by the next; the last one (or the one
            # in flight at the kill, which came after it) is what must be there.
            found += log.state_writes
        else:
            report.problems.append(f"state tag is {state!r}, expected one of {allowed}")
        report.acknowledged_found += found
        for image_id, expected in log.unknown_creates.items():
            report.unanswered += 1
            if image_id not in images:
                report.unanswered_not_applied += 1
            elif tags.get(image_id) == expected:
                report.unanswered_applied += 1
            else:
                report.problems.append(f"half-written image {image_id}: {tags.get(image_id)}")
        for value in log.state_unknown:
            report.unanswered += 1
            if state == value:
                report.unanswered_applied += 1
            else:
                report.unanswered_not_applied += 1
        for image_id in log.unknown_deletes:
            report.unanswered += 1
            if image_id in images:
                report.unanswered_not_applied += 1
            else:
                report.unanswered_applied += 1
    # The API agrees with the database for a sample of acknowledged images.
    # (Not those whose delete was in flight at the kill: either answer is right for them.)
    sample = [
        i
        for log in logs
        for i in log.created
        if i not in log.deleted and i not in log.unknown_deletes
    ][:5]
    for image_id in sample:
        response = signed_request(base_url, credential, "GET", f"/v2/images/{image_id}")
        if response.status_code != 200:
            report.problems.append(f"GET {image_id} after restart: {response.status_code}")
    if not report.aggregate_exact:
        report.problems.append("tag aggregate differs from a full recount")
    return report
