"""The performance benchmark: workload W at several sizes, the real server, measured with wrk.

For each database (SQLite, and PostgreSQL when ``--postgres URL`` is given) and each size N of
workload W (one project, N images, 10 tags each from 50 keys x 20 values), it loads W with
``imstags images import``, starts the server with the floor route (``benchmarks/floor.py``:
``imstags serve``'s app and options plus one route), and measures:

- the floor: ``/_bench/floor/{project}``, the core endpoint's bytes through the same stack with
  no database and no authentication;
- the core endpoint ``GET /v2/{project}/images/tags``, signed (SDK-HMAC-SHA256): requests/s and
  latency under load, and latency unloaded (one connection);
- tag writes ``POST .../images/{id}/tags/action`` (create 3 tags, then delete them);
- the query by one tag ``POST .../images/resource_instances/action`` (limit 100);
- the server's peak RSS; and at the largest N, throughput with 1 and 2 workers.

It prints one table and writes every figure as JSON (``--json``). Loaded databases are kept in
``--workdir`` and reused by later runs (``--fresh`` reloads them).

    .venv/bin/python -m benchmarks.run --sizes 1000,1000000 \\
        --postgres postgresql://postgres@127.0.0.1:5432/postgres --json bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from benchmarks.harness import (
    PROJECT,
    Server,
    Target,
    ensure_wrk,
    image_ids,
    imstags,
    load,
    lua_requests,
    median_of,
    postgres_target,
    run_wrk,
    serve,
    server_env,
    signed_headers,
    sqlite_target,
)

# --- one measurement round --------------------------------------------------------------------


def floor_and_core(
    wrk: str, server: Server, core_script: Path, *, connections: int, duration: int, rounds: int
) -> tuple[dict[str, float], dict[str, float]]:
    """The floor's and the core endpoint's medians over ``rounds`` runs of each, after a
    warm-up. The runs alternate, so that other load on the machine falls on both alike."""
    floor_url = f"{server.base_url}/_bench/floor/{PROJECT}"
    core_url = f"{server.base_url}/v2/{PROJECT}/images/tags"
    run_wrk(wrk, floor_url, connections=connections, duration=2)
    run_wrk(wrk, core_url, connections=connections, duration=2, script=core_script)
    floors, cores = [], []
    for _ in range(rounds):
        floors.append(
            run_wrk(wrk, floor_url, connections=connections, duration=duration, server=server)
        )
        cores.append(
            run_wrk(wrk, core_url, connections=connections, duration=duration,
                    script=core_script, server=server)
        )  # fmt: skip
    return median_of(floors), median_of(cores)


def measure(
    wrk: str,
    env: dict[str, str],
    target: Target,
    credential: dict[str, str],
    workdir: Path,
    *,
    duration: int,
    connections: int,
    rounds: int,
    full: bool,
    log: Path,
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    ak, sk = credential["access"], credential["secret"]
    with serve(env, target, 1, log) as server:
        core_url = f"{server.base_url}/v2/{PROJECT}/images/tags"
        floor_url = f"{server.base_url}/_bench/floor/{PROJECT}"
        core_headers = signed_headers("GET", core_url, ak, sk)
        first = httpx.get(core_url, headers=core_headers, timeout=30)
        first.raise_for_status()
        floor_body = httpx.get(floor_url, timeout=30).content
        assert floor_body == first.content, "the floor must answer the same bytes"
        figures["body_bytes"] = len(first.content)
        core_script = lua_requests(
            workdir / "core.lua", [("GET", urlsplit(core_url).path, core_headers, b"")]
        )
        figures["floor"], figures["core"] = floor_and_core(
            wrk, server, core_script, connections=connections, duration=duration, rounds=rounds
        )
        figures["core_unloaded"] = run_wrk(
            wrk, core_url, connections=1, duration=duration, script=core_script, server=server
        ).as_dict()
        figures["core_over_floor"] = figures["core"]["requests_per_s"] / max(
            figures["floor"]["requests_per_s"], 1e-9
        )
        figures["floor_over_core_cpu"] = figures["floor"]["server_cpu_us_per_request"] / max(
            figures["core"]["server_cpu_us_per_request"], 1e-9
        )
        if full:
            figures.update(measure_writes_and_queries(wrk, server, target, ak, sk, workdir,
                                                      duration, connections))  # fmt: skip
        figures["peak_rss_mb"] = server.peak_rss_mb()
    return figures


def measure_writes_and_queries(
    wrk: str,
    server: Server,
    target: Target,
    ak: str,
    sk: str,
    workdir: Path,
    duration: int,
    connections: int,
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    # Writes: 64 images, each created 3 tags then deleted them, 64 requests apart, so that no
    # two requests in flight touch one image and every request really changes something.
    writes = []
    ids = image_ids(target, 64)
    for action in ("create", "delete"):
        for image_id in ids:
            path = f"/v2/{PROJECT}/images/{image_id}/tags/action"
            body = json.dumps(
                {"action": action, "tags": [{"key": f"bench{i}", "value": "x"} for i in range(3)]}
            ).encode()
            headers = signed_headers("POST", server.base_url + path, ak, sk, body)
            writes.append(("POST", path, headers, body))
    # W's images have 10 tags: leave room for 3 more by dropping some first (untimed).
    for image_id in ids:
        path = f"/v2/{PROJECT}/images/{image_id}/tags"
        got = httpx.get(server.base_url + path, headers=signed_headers(
            "GET", server.base_url + path, ak, sk), timeout=30).json()["tags"]  # fmt: skip
        surplus = max(0, len(got) - 7)
        if not surplus:
            continue
        body = json.dumps(
            {"action": "delete", "tags": [{"key": t["key"]} for t in got[:surplus]]}
        ).encode()
        action_url = f"{server.base_url}{path}/action"
        response = httpx.post(
            action_url,
            content=body,
            headers=signed_headers("POST", action_url, ak, sk, body),
            timeout=30,
        )
        response.raise_for_status()
    script = lua_requests(workdir / "writes.lua", writes)
    figures["tag_writes"] = run_wrk(
        wrk,
        server.base_url,
        connections=connections,
        duration=duration,
        script=script,
        server=server,
    ).as_dict()
    # The query by one tag, limit 100.
    path = f"/v2/{PROJECT}/images/resource_instances/action"
    body = json.dumps(
        {"action": "filter", "tags": [{"key": "key08", "values": ["value00"]}], "limit": "100"}
    ).encode()
    url = server.base_url + path
    started = time.monotonic()
    probe = httpx.post(
        url, content=body, headers=signed_headers("POST", url, ak, sk, body), timeout=300
    )
    figures["query_by_tag_first_ms"] = (time.monotonic() - started) * 1000
    if probe.status_code == 200:
        headers = signed_headers("POST", url, ak, sk, body)
        script = lua_requests(workdir / "query.lua", [("POST", path, headers, body)])
        figures["query_by_tag"] = run_wrk(
            wrk, server.base_url, connections=1, duration=duration, script=script, server=server
        ).as_dict()
        figures["query_by_tag"]["matches_returned"] = len(probe.json().get("resources", []))
        if not figures["query_by_tag"]["requests_per_s"]:  # not one answer within wrk's 5 s
            figures["query_by_tag"]["p50_ms"] = float("nan")
    else:
        figures["query_by_tag"] = {"unavailable": probe.status_code}
    return figures


def measure_workers(
    wrk: str,
    env: dict[str, str],
    target: Target,
    credential: dict[str, str],
    workdir: Path,
    *,
    duration: int,
    connections: int,
    rounds: int,
    log: Path,
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for workers in (1, 2):
        with serve(env, target, workers, log) as server:
            url = f"{server.base_url}/v2/{PROJECT}/images/tags"
            headers = signed_headers("GET", url, credential["access"], credential["secret"])
            script = lua_requests(workdir / "core.lua", [("GET", urlsplit(url).path, headers, b"")])
            floor, core = floor_and_core(
                wrk, server, script, connections=connections, duration=duration, rounds=rounds
            )
            figures[f"core_{workers}w"], figures[f"floor_{workers}w"] = core, floor
    return figures


# --- the table --------------------------------------------------------------------------------


def table(results: dict[str, Any]) -> str:
    rows = [
        "| database | N | floor req/s | core req/s | core/floor | core p50 / p99 ms (loaded) "
        "| core p50 ms (1 conn) | writes req/s | writes p50 ms | query p50 ms | peak RSS MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, per_size in results["databases"].items():
        for size, f in per_size["sizes"].items():
            writes = f.get("tag_writes", {})
            query = f.get("query_by_tag", {})
            rows.append(
                f"| {name} | {int(size):,} | {f['floor']['requests_per_s']:,.0f} "
                f"| {f['core']['requests_per_s']:,.0f} | {f['core_over_floor']:.2f} "
                f"| {f['core']['p50_ms']:.2f} / {f['core']['p99_ms']:.2f} "
                f"| {f['core_unloaded']['p50_ms']:.3f} "
                f"| {writes.get('requests_per_s', float('nan')):,.0f} "
                f"| {writes.get('p50_ms', float('nan')):.2f} "
                f"| {query.get('p50_ms', float('nan')):.2f} | {f['peak_rss_mb']:.0f} |"
            )
    lines = ["\n".join(rows), ""]
    for name, per_size in results["databases"].items():
        if "latency_ratio_largest_vs_smallest" in per_size:
            lines.append(
                f"{name}: core latency (1 connection, median) at the largest N / smallest N = "
                f"{per_size['latency_ratio_largest_vs_smallest']:.2f}"
            )
        for size, f in per_size["sizes"].items():
            if "query_by_tag_first_ms" in f:
                lines.append(
                    f"{name}: query by one tag at N={int(size):,}, first request: "
                    f"{f['query_by_tag_first_ms']:,.0f} ms"
                )
        for key, value in per_size.get("workers", {}).items():
            lines.append(f"{name}: {key}: {value['requests_per_s']:,.0f} req/s")
        for size, seconds in per_size.get("load_seconds", {}).items():
            cpu = per_size.get("load_cpu_seconds", {}).get(size, float("nan"))
            lines.append(
                f"{name}: load of N={int(size):,}: {seconds:.0f} s wall, {cpu:.0f} s CPU"
                " of the importer"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--postgres", help="PostgreSQL server URL (a database per size is made)")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternated floor/core runs")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "imstags-bench"
    )
    parser.add_argument("--fresh", action="store_true", help="reload databases loaded before")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"))
    args = parser.parse_args()

    wrk = ensure_wrk()
    env = server_env(args.workdir)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    targets: list[tuple[str, Any]] = []
    if not args.no_sqlite:
        targets.append(("sqlite", lambda n: sqlite_target(args.workdir, n)))
    if args.postgres:
        targets.append(("postgresql", lambda n: postgres_target(args.postgres, n)))
    log = args.workdir / "server.log"
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "command": " ".join(sys.argv),
        "workload": "W: 1 project, N images, 10 tags each from 50 keys x 20 values, seed 1",
        "wrk": f"-t1 -c{args.connections} -d{args.duration}s, median of {args.rounds} alternated "
        "floor/core runs (unloaded latency: -c1)",
        "databases": {},
    }
    for name, make_target in targets:
        per_size: dict[str, Any] = {"sizes": {}, "load_seconds": {}, "load_cpu_seconds": {}}
        results["databases"][name] = per_size
        for size in sizes:
            target = make_target(size)
            print(f"== {name}, N={size:,}: loading", file=sys.stderr)
            wall, cpu = load(env, target, args.workdir, size, args.fresh)
            per_size["load_seconds"][str(size)] = wall
            per_size["load_cpu_seconds"][str(size)] = cpu
            credential = json.loads(
                imstags(
                    {**env, "IMSTAGS_DATABASE_URL": target.url},
                    "credentials",
                    "create",
                    "--project-id",
                    PROJECT,
                ).stdout  # fmt: skip
            )
            print(f"== {name}, N={size:,}: measuring", file=sys.stderr)
            per_size["sizes"][str(size)] = measure(
                wrk, env, target, credential, args.workdir, duration=args.duration,
                connections=args.connections, rounds=args.rounds, full=size == sizes[-1],
                log=log,
            )  # fmt: skip
            if size == sizes[-1]:
                per_size["workers"] = measure_workers(
                    wrk, env, target, credential, args.workdir, duration=args.duration,
                    connections=args.connections, rounds=args.rounds, log=log,
                )  # fmt: skip
        smallest, largest = per_size["sizes"][str(sizes[0])], per_size["sizes"][str(sizes[-1])]
        per_size["latency_ratio_largest_vs_smallest"] = (
            largest["core_unloaded"]["p50_ms"] / smallest["core_unloaded"]["p50_ms"]
        )
        args.json.write_text(json.dumps(results, indent=2))
    print(table(results))
    args.json.write_text(json.dumps(results, indent=2))
    print(f"figures written to {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
