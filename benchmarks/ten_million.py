"""Workload W at ten million images on PostgreSQL, against the same at a thousand (issue 16).

Loads W of each size into a database of its own (unless it is loaded already: the 10M load
takes many minutes and its database is kept), then, with the real server (the options of
``imstags serve``, one process), prints:

- the core endpoint's one-connection latency (wrk ``-c1``, as ``run.py`` measures it) at both
  sizes, and their ratio;
- the query by one tag (``resource_instances/action``, limit 100): the first request, then
  wrk ``-c1`` on the first page and on a deep page (``offset`` 10,000);
- the server's peak RSS;
- the database's size on disk, per table and index, and per million images;
- with ``--churn-seconds S``: tag writes for S seconds at 16 connections on ``--churn-images``
  images drawn at random (each request sets one of the image's keys to another value, then
  back), with the tables' dead rows, autovacuum runs and index sizes before and after, and
  the query by tag measured again.

    .venv/bin/python -m benchmarks.ten_million \\
        --postgres postgresql://postgres@127.0.0.1:5432/postgres --large 10000000 \\
        --workdir DIR --json ten-million.json

The databases are ``imstags_w_<N>`` (or ``--large-database``); ``--fresh`` drops and reloads
them. A database loaded by hand is measured as it is when ``DIR/loaded-postgresql-<N>`` holds
its load's wall-clock and CPU seconds (``run.py``'s marker).
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
    Server,
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


def target(server_url: str, size: int, database: str | None = None) -> Target:
    url = make_url(server_url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = database or f"imstags_w_{size}"
    return Target("postgresql", url.set(database=name).render_as_string(False))


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


def table_health(target_: Target) -> dict[str, Any]:
    """Dead rows, vacuum runs and sizes of the tag tables and their indexes (leaf density
    from pgstattuple when the server has it)."""
    engine = create_engine(target_.url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                text(
                    "SELECT relname, n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd,"
                    " autovacuum_count, autoanalyze_count, last_autovacuum::text,"
                    " pg_relation_size(relid) FROM pg_stat_user_tables"
                    " WHERE relname IN ('images', 'image_tags', 'tag_counts', 'tag_versions')"
                )
            ).all()
            indexes = conn.execute(
                text(
                    "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes"
                    " WHERE relname IN ('images', 'image_tags', 'tag_counts')"
                )
            ).all()
            density: dict[str, Any] = {}
            try:
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS pgstattuple"))
                for name in ("ix_image_tags_by_tag", "pk_image_tags", "pk_tag_counts"):
                    row = conn.execute(
                        text(
                            "SELECT avg_leaf_density, leaf_fragmentation, deleted_pages"
                            " FROM pgstatindex(:n)"
                        ),
                        {"n": name},
                    ).one()
                    density[name] = {
                        "avg_leaf_density": row[0],
                        "leaf_fragmentation": row[1],
                        "deleted_pages": row[2],
                    }
            except Exception as exc:  # noqa: BLE001 (an optional extension)
                density = {"unavailable": str(exc).splitlines()[0]}
    finally:
        engine.dispose()
    mb = 1024 * 1024
    return {
        "tables": {
            name: {
                "live": live, "dead": dead, "updates": upd, "hot_updates": hot,
                "autovacuums": av, "autoanalyzes": aa, "last_autovacuum": last,
                "mb": round(size / mb, 1),
            }
            for name, live, dead, upd, hot, av, aa, last, size in tables
        },
        "indexes_mb": {name: round(size / mb, 1) for name, size in indexes},
        "pgstatindex": density,
    }  # fmt: skip


def churn(
    wrk: str, server: Server, target_: Target, ak: str, sk: str, workdir: Path,
    seconds: int, images: int,
) -> dict[str, Any]:  # fmt: skip
    """Tag writes on ``images`` random images for ``seconds``: each request sets one key of
    its image to "churn", the next one sets it back, so every request changes a tag row."""
    engine = create_engine(target_.url)
    try:
        with engine.connect() as conn:
            picked = conn.execute(
                text(
                    "SELECT DISTINCT ON (t.image_id) t.image_id, t.key, t.value"
                    " FROM (SELECT id FROM images TABLESAMPLE SYSTEM (1) LIMIT :n) i"
                    " JOIN image_tags t ON t.image_id = i.id ORDER BY t.image_id, t.key"
                ),
                {"n": images},
            ).all()
    finally:
        engine.dispose()
    requests = []
    for value_of in (lambda _v: "churn", lambda v: v):
        for image_id, key, value in picked:
            path = f"/v2/{PROJECT}/images/{image_id}/tags/action"
            body = json.dumps(
                {"action": "create", "tags": [{"key": key, "value": value_of(value)}]}
            ).encode()
            headers = signed_headers("POST", server.base_url + path, ak, sk, body)
            requests.append(("POST", path, headers, body))
    script = lua_requests(workdir / "churn.lua", requests)
    result = run_wrk(
        wrk, server.base_url, connections=16, duration=seconds, script=script, server=server
    )
    return {"images": len(picked), **result.as_dict()}


def measure(
    wrk: str,
    env: dict[str, str],
    target_: Target,
    workdir: Path,
    duration: int,
    deep: bool,
    churn_seconds: int = 0,
    churn_images: int = 0,
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
        figures.update(queries(wrk, server, ak, sk, workdir, duration, offsets))
        if churn_seconds:
            figures["health_before_churn"] = table_health(target_)
            figures["churn"] = churn(
                wrk, server, target_, ak, sk, workdir, churn_seconds, churn_images
            )
            figures["health_after_churn"] = table_health(target_)
            after = queries(wrk, server, ak, sk, workdir, duration, offsets)
            figures["after_churn"] = after
        figures["peak_rss_mb"] = server.peak_rss_mb()
    return figures


def queries(
    wrk: str, server: Server, ak: str, sk: str, workdir: Path, duration: int,
    offsets: tuple[int, ...],
) -> dict[str, Any]:  # fmt: skip
    """The query by one tag at each offset: the first request, then wrk -c1."""
    figures: dict[str, Any] = {}
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
    parser.add_argument(
        "--large-database",
        help="the large size's database, if not imstags_w_<N> (with --fresh, it is reloaded)",
    )
    parser.add_argument("--fresh", action="store_true", help="reload databases loaded before")
    parser.add_argument("--churn-seconds", type=int, default=0, help="tag writes at the large size")
    parser.add_argument("--churn-images", type=int, default=4096)
    parser.add_argument("--json", type=Path, default=Path("ten-million.json"))
    args = parser.parse_args()

    wrk = ensure_wrk()
    env = server_env(args.workdir)
    results: dict[str, Any] = {"command": " ".join(sys.argv), "sizes": {}}
    for size in (args.small, args.large):
        target_ = target(args.postgres, size, args.large_database if size == args.large else None)
        print(f"== N={size:,}: loading (if not loaded)", file=sys.stderr)
        wall, cpu = load(env, target_, args.workdir, size, args.fresh)
        print(f"== N={size:,}: measuring", file=sys.stderr)
        large = size == args.large
        figures = measure(
            wrk, env, target_, args.workdir, args.duration, deep=large,
            churn_seconds=args.churn_seconds if large else 0, churn_images=args.churn_images,
        )  # fmt: skip
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
