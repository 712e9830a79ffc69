"""The server's memory under the hostile requests of issue 11 items 2 to 4, and tag write
latency during a burst of failed logins (item 6).

Starts ``imstags serve`` on loopback (SQLite in a temporary directory unless
``--database-url``), then sends, each phase bounded in count and time:

- ``unknown-keys``: signatures with invented access keys (30 KB ones, and short ones with a
  current date), dated 2000-01-01 (item 2);
- ``padding``: one captured signed GET replayed with a different 30 KB unsigned header each
  time (item 3);
- ``logins``: failed ``POST /v3/auth/tokens`` with 1 MB and 255-character invented names
  (item 4);

and prints the server's RSS before and after each phase. Then ``burst``: failed logins from
many concurrent clients while one client writes tags, printing the tag write latencies.

    python -m benchmarks.hostile_memory --requests 50000 --seconds 240
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks.harness import free_port, signed_headers

PYTHON = sys.executable


def rss_mib(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def imstags(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [PYTHON, "-m", "imstags", *args], env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


async def hammer(
    base_url: str,
    make: Callable[[int], tuple[str, str, dict[str, str], bytes]],
    count: int,
    seconds: float,
    concurrency: int = 16,
) -> dict[int, int]:
    """Send ``make(i)`` for i < count, ``concurrency`` at a time, stopping after ``seconds``."""
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    counter = iter(range(count))
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:

        async def worker() -> None:
            for index in counter:
                if time.monotonic() > deadline:
                    return
                method, path, headers, body = make(index)
                try:
                    response = await client.request(method, path, headers=headers, content=body)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                except httpx.HTTPError:
                    statuses[0] = statuses.get(0, 0) + 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def unknown_key(index: int) -> tuple[str, str, dict[str, str], bytes]:
    access = f"{index:08d}" + ("A" * 30_000 if index % 2 else uuid.uuid4().hex.upper()[:24])
    date = "20000101T000000Z" if index % 4 < 2 else datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    authorization = (
        f"SDK-HMAC-SHA256 Access={access}, SignedHeaders=host;x-sdk-date, Signature={'ab' * 32}"
    )
    headers = {"X-Sdk-Date": date, "Authorization": authorization}
    return "GET", f"/v2/{'0' * 32}/images/tags", headers, b""


def login(index: int) -> tuple[str, str, dict[str, str], bytes]:
    # One in ten names is 1 MB (refused by the request model); the others are invented names
    # of the longest length accepted.
    name = "x" * 1_000_000 if index % 10 == 0 else (uuid.uuid4().hex * 8)[:247] + f"{index:08d}"
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": name, "domain": {"id": "default"}, "password": "wrong"}
                },
            }
        }
    }
    return (
        "POST",
        "/v3/auth/tokens",
        {"Content-Type": "application/json"},
        json.dumps(body).encode(),
    )


async def burst(
    base_url: str, project: str, image_id: str, ak: str, sk: str, logins: int, seconds: float
) -> list[float]:
    """Tag write latencies (ms) while ``logins`` failed logins run concurrently."""
    latencies: list[float] = []
    done = asyncio.Event()

    async def writer() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            index = 0
            while not done.is_set() and index < 2000:
                path = f"/v2/{project}/images/{image_id}/tags/action"
                body = json.dumps(
                    {"action": "create", "tags": [{"key": "k", "value": f"v{index}"}]}
                ).encode()
                headers = signed_headers("POST", base_url + path, ak, sk, body)
                started = time.monotonic()
                await client.post(path, headers=headers, content=body)
                latencies.append((time.monotonic() - started) * 1000)
                index += 1

    task = asyncio.create_task(writer())
    await asyncio.sleep(0.5)
    await hammer(base_url, login_named, logins, seconds, concurrency=32)
    done.set()
    await task
    return latencies


def login_named(index: int) -> tuple[str, str, dict[str, str], bytes]:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "victim", "domain": {"id": "default"}, "password": "no"}
                },
            }
        }
    }
    return (
        "POST",
        "/v3/auth/tokens",
        {"Content-Type": "application/json"},
        json.dumps(body).encode(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50_000, help="per memory phase")
    parser.add_argument("--seconds", type=float, default=240, help="limit per phase")
    parser.add_argument("--burst-logins", type=int, default=300)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="imstags-hostile-"))
    env = {
        **os.environ,
        "IMSTAGS_DATA_DIR": str(workdir),
        # The limits would answer most logins 429 before the password is checked; the burst
        # phase wants every attempt checked.
        "IMSTAGS_LOGIN_FAILURES_PER_USER": "0",
        "IMSTAGS_LOGIN_FAILURES_PER_CLIENT": "0",
    }
    if args.database_url:
        env["IMSTAGS_DATABASE_URL"] = args.database_url
    imstags(env, "db", "upgrade")
    project = uuid.uuid4().hex
    cred = json.loads(imstags(env, "credentials", "create", "--project-id", project))
    ak, sk = cred["access"], cred["secret"]
    imstags(env, "users", "create", "--name", "victim", "--password", "pw-" + uuid.uuid4().hex,
            "--project-id", project)  # fmt: skip
    port = free_port()
    log = (workdir / "server.log").open("wb")
    server = subprocess.Popen(
        [PYTHON, "-m", "imstags", "serve", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=log, stderr=log,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base_url + "/healthz", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        tags_path = f"/v2/{project}/images/tags"
        captured = signed_headers("GET", base_url + tags_path, ak, sk)

        def padded(index: int) -> tuple[str, str, dict[str, str], bytes]:
            pad = f"{index:08d}" + "p" * 30_000
            return "GET", tags_path, {**captured, "X-Pad": pad}, b""

        print(f"server pid {server.pid}, RSS at start {rss_mib(server.pid):.1f} MiB")
        for name, make in (("unknown-keys", unknown_key), ("padding", padded), ("logins", login)):
            before = rss_mib(server.pid)
            started = time.monotonic()
            # Each login costs an argon2 check: a few hundred show the trend.
            count = args.requests if name != "logins" else min(args.requests, 500)
            statuses = asyncio.run(hammer(base_url, make, count, args.seconds))
            after = rss_mib(server.pid)
            print(
                f"{name:13s} {sum(statuses.values()):6d} requests in "
                f"{time.monotonic() - started:5.1f} s  statuses {dict(sorted(statuses.items()))}"
                f"  RSS {before:.1f} -> {after:.1f} MiB ({after - before:+.1f})"
            )
        created = httpx.post(
            base_url + "/v2/images",
            headers=signed_headers("POST", base_url + "/v2/images", ak, sk, b'{"name": "w"}'),
            content=b'{"name": "w"}',
        )
        image_id = created.json()["id"]
        quiet = asyncio.run(burst(base_url, project, image_id, ak, sk, 0, 0.1))
        busy = asyncio.run(
            burst(base_url, project, image_id, ak, sk, args.burst_logins, args.seconds)
        )
        for label, values in (("idle", quiet), (f"{args.burst_logins} failed logins", busy)):
            if values:
                print(
                    f"tag writes during {label}: {len(values)} writes, median "
                    f"{statistics.median(values):.1f} ms, max {max(values):.1f} ms"
                )
        print(f"RSS at end {rss_mib(server.pid):.1f} MiB")
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


if __name__ == "__main__":
    main()
