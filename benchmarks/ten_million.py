"""Workload W at ten million images on PostgreSQL, against the same at a thousand (issue 16).

Loads W of each size into a database of its own (unless it is loaded already: the 10M load
takes many minutes and its database is kept), then, with the real server (the options of
``imstags serve``, one process), prints:

- the core endpoint's one-connection latency (wrk ``-c1``, as ``run.py`` measures it) at both
  sizes, and their ratio;
- the query by one tag (``resource_instances/action``, limit 100): the first request, then
  wrk ``-c1`` on the first page and on a deep page (``offset`` 10,000);
- the server's peak RSS;
- the database's size on disk, per table and index, and per million images.

    .venv/bin/python -m benchmarks.ten_million \\
        --postgres postgresql://postgres@127.0.0.1:5432/postgres --large 10000000 \\
        --workdir DIR --json ten-million.json

The databases are ``imstags_w_<N>``; ``--fresh`` drops and reloads them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benchmarks.harness import (
    PROJECT,
    Target,
    ensure_wrk,
    imstags,
    load,
    lua_requests,
    run_wrk,
    serve,
    server_env,
    signed_headers,
)

QUERY_PATH = f"/v2/{PROJECT}/images/resource_instances/action"


def target(server_url: str, size: int) -> Target:
    url = make_url(server_url.replace("postgresql://", "postgresql+psycopg://", 1))
    return Target("postgresql", url.set(database=f"imstags_w_{size}").render_as_string(False))


def query_body(offset: int) -> bytes:
    return json.dumps(
        {
            "action": "filter",
            "tags": [{"key": "key08", "values": ["value00"]}],
            "limit": "100",
            "offset": str(offset),
        }
    ).encode()


def sizes_on_disk(target_: Target) -> dict[str, Any]:
    engine = create_engine(target_.url)
    try:
        with engine.connect() as conn:
            relations = conn.execute(
                text(
                    "SELECT c.relname, c.relkind, pg_relation_size(c.oid)"
                    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i')"
                    " ORDER BY 3 DESC"
                )
            ).all()
            database = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
            images = conn.execute(text("SELECT count(*) FROM images")).scalar()
    finally:
        engine.dispose()
    mb = 1024 * 1024
    return {
        "database_mb": round(int(database or 0) / mb, 1),
        "images": images,
        "mb_per_million_images": round(int(database or 0) / mb / max(int(images or 0), 1) * 1e6, 1),
        "relations_mb": {name: round(size / mb, 1) for name, kind, size in relations if size},
    }


def measure(
    wrk: str, env: dict[str, str], target_: Target, workdir: Path, duration: int, deep: bool
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    credential = json.loads(
        imstags(
            {**env, "IMSTAGS_DATABASE_URL": target_.url},
            "credentials", "create", "--project-id", PROJECT,
        ).stdout
    )  # fmt: skip
    ak, sk = credential["access"], credential["secret"]
    with serve(env, target_, 1, workdir / "server.log") as server:
        core_url = f"{server.base_url}/v2/{PROJECT}/images/tags"
        headers = signed_headers("GET", core_url, ak, sk)
        started = time.monotonic()
        httpx.get(core_url, headers=headers, timeout=300).raise_for_status()
        figures["core_first_ms"] = (time.monotonic() - started) * 1000
        core = lua_requests(workdir / "core.lua", [("GET", urlsplit(core_url).path, headers, b"")])
        run_wrk(wrk, core_url, connections=1, duration=2, script=core)  # warm-up
        runs = [
            run_wrk(wrk, core_url, connections=1, duration=duration, script=core, server=server)
            for _ in range(3)
        ]
        figures["core_1conn_p50_ms"] = statistics.median(r.p50_ms for r in runs)
        figures["core_1conn_p99_ms"] = statistics.median(r.p99_ms for r in runs)
        offsets = (0, 10_000) if deep else (0,)
        for offset in offsets:
            body = query_body(offset)
            url = server.base_url + QUERY_PATH
            started = time.monotonic()
            first = httpx.post(
                url, content=body, headers=signed_headers("POST", url, ak, sk, body), timeout=300
            )
            elapsed = (time.monotonic() - started) * 1000
            first.raise_for_status()
            answer = first.json()
            script = lua_requests(
                workdir / f"query-{offset}.lua",
                [("POST", QUERY_PATH, signed_headers("POST", url, ak, sk, body), body)],
            )
            result = run_wrk(
                wrk, server.base_url, connections=1, duration=duration, script=script,
                server=server,
            )  # fmt: skip
            figures[f"query_offset_{offset}"] = {
                "first_ms": elapsed,
                "p50_ms": result.p50_ms,
                "p99_ms": result.p99_ms,
                "requests_per_s": result.requests_per_s,
                "non_2xx": result.non_2xx,
                "returned": len(answer.get("resources", [])),
                "total_count": answer.get("total_count"),
            }
        figures["peak_rss_mb"] = server.peak_rss_mb()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", required=True, help="PostgreSQL server URL")
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=10_000_000)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "imstags-bench-10m"
    )
    parser.add_argument("--fresh", action="store_true", help="reload databases loaded before")
    parser.add_argument("--json", type=Path, default=Path("ten-million.json"))
    args = parser.parse_args()

    wrk = ensure_wrk()
    env = server_env(args.workdir)
    results: dict[str, Any] = {"command": " ".join(sys.argv), "sizes": {}}
    for size in (args.small, args.large):
        target_ = target(args.postgres, size)
        print(f"== N={size:,}: loading (if not loaded)", file=sys.stderr)
        wall, cpu = load(env, target_, args.workdir, size, args.fresh)
        print(f"== N={size:,}: measuring", file=sys.stderr)
        figures = measure(wrk, env, target_, args.workdir, args.duration, deep=size >= 100_000)
        figures["load_seconds"], figures["load_cpu_seconds"] = wall, cpu
        figures["disk"] = sizes_on_disk(target_)
        results["sizes"][str(size)] = figures
        args.json.write_text(json.dumps(results, indent=2))
    small, large = results["sizes"][str(args.small)], results["sizes"][str(args.large)]
    results["core_1conn_ratio"] = large["core_1conn_p50_ms"] / small["core_1conn_p50_ms"]
    args.json.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
