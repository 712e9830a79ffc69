"""Memory of a core-summary stampede (issue 11, item 13): RSS before and after readers pile
onto a project whose summary must be rebuilt.

A project of ``--images`` images, each with ``--tags`` tags of its own values (so the summary
has images x tags distinct values: its rebuild is as heavy as a project can make it), is
imported; then, ``--rounds`` times: one tag write (the summary is stale), ``--readers``
concurrent GETs of the core endpoint, and meanwhile one GET of another, small project. The
script prints the server's RSS before and after, its peak, how many rebuilds were saved
(bodies alike), and the small project's latency during the stampede. Loopback only, bounded
in rounds, readers and time (every request has a 120 s timeout).

    python -m benchmarks.stampede_memory --images 30000 --readers 30
    python -m benchmarks.stampede_memory --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson

from benchmarks.harness import (
    PROJECT,
    imstags,
    postgres_target,
    recreate,
    serve,
    server_env,
    signed_headers,
    sqlite_target,
)

OTHER_PROJECT = "small000000000000000000000000000"
SMALL_IMAGE = "00000000-0000-4000-9000-000000000001"
TIMEOUT = 120.0


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    match = re.search(rf"{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def write_project(path: Path, images: int, tags: int) -> None:
    with path.open("wb") as out:
        for n in range(images):
            line = {
                "project_id": PROJECT,
                "id": f"00000000-0000-4000-8000-{n:012d}",
                "name": f"stampede-{n}",
                "tags": {f"k{t}": f"v{n}-{t}" for t in range(tags)},
            }
            out.write(orjson.dumps(line) + b"\n")
        small = {
            "project_id": OTHER_PROJECT,
            "id": SMALL_IMAGE,
            "name": "small",
            "tags": {"a": "b"},
        }
        out.write(orjson.dumps(small) + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=30_000)
    parser.add_argument("--tags", type=int, default=10)
    parser.add_argument("--readers", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="imstags-stampede-"))
    env = server_env(workdir)
    size = args.images
    target = postgres_target(args.postgres, size) if args.postgres else sqlite_target(workdir, size)
    recreate(target, workdir, size)
    env = {**env, "IMSTAGS_DATABASE_URL": target.url}
    data = workdir / "stampede.jsonl"
    write_project(data, args.images, args.tags)
    imstags(env, "db", "upgrade")
    imstags(env, "images", "import", str(data))
    big = json.loads(imstags(env, "credentials", "create", "--project-id", PROJECT).stdout)
    small = json.loads(imstags(env, "credentials", "create", "--project-id", OTHER_PROJECT).stdout)

    def get(credential: dict[str, str], project: str) -> tuple[float, bytes, int]:
        """Seconds, body and status (a 503 is a finding here, not an error of the script)."""
        url = f"{base}/v2/{project}/images/tags"
        headers = signed_headers("GET", url, credential["access"], credential["secret"])
        started = time.monotonic()
        response = httpx.get(url, headers=headers, timeout=TIMEOUT)
        return time.monotonic() - started, response.content, response.status_code

    def write_tag(value: str) -> None:
        image = "00000000-0000-4000-8000-000000000000"
        url = f"{base}/v2/{PROJECT}/images/{image}/tags/action"
        body = json.dumps({"action": "create", "tags": [{"key": "k0", "value": value}]}).encode()
        headers = signed_headers("POST", url, big["access"], big["secret"], body)
        httpx.post(url, content=body, headers=headers, timeout=TIMEOUT).raise_for_status()

    with serve(env, target, 1, workdir / "server.log") as server:
        base, pid = server.base_url, server.process.pid
        get(big, PROJECT)  # warm: the body cached once, as in steady state
        get(small, OTHER_PROJECT)
        before = rss_mb(pid)
        print(f"{target.name}: {args.images} images x {args.tags} own tags, "
              f"{args.readers} readers, {args.rounds} rounds")  # fmt: skip
        print(f"RSS before: {before:.0f} MiB (peak so far {rss_mb(pid, 'VmHWM'):.0f} MiB)")
        with ThreadPoolExecutor(args.readers + 1) as pool:
            for round_number in range(1, args.rounds + 1):
                write_tag(f"round-{round_number}")
                readers = [pool.submit(get, big, PROJECT) for _ in range(args.readers)]
                time.sleep(0.05)
                other_seconds, _, other_status = pool.submit(get, small, OTHER_PROJECT).result()
                results = [reader.result() for reader in readers]
                bodies = {body for _, body, status in results if status == 200}
                statuses = Counter(status for _, _, status in results)
                slowest = max(seconds for seconds, _, _ in results)
                print(f"round {round_number}: RSS {rss_mb(pid):.0f} MiB, readers {dict(statuses)}, "
                      f"{len(bodies)} distinct bodies of {len(results[0][1]) / 1e6:.1f} MB, "
                      f"slowest reader {slowest:.2f} s, other project's GET {other_status} in "
                      f"{other_seconds:.2f} s")  # fmt: skip
        after, peak = rss_mb(pid), rss_mb(pid, "VmHWM")
        print(f"RSS after: {after:.0f} MiB ({after - before:+.0f} MiB), peak {peak:.0f} MiB")


if __name__ == "__main__":
    main()
