"""One client's round trip: imstags against a trivial server, for the core read and a tag write.

One client, one connection, requests one after the other (``wrk -t1 -c1``), signed as the
Huawei Cloud SDK signs them (SDK-HMAC-SHA256). Two servers run side by side:

- **imstags**: ``imstags serve`` on a loaded workload-W database (N=1,000 by default: the
  database's size is not what is measured here);
- **trivial**: the same uvicorn with exactly the options ``imstags serve`` passes (it is started
  through :func:`imstags.cli.serve.run_server`), serving a bare ASGI callable with no framework
  that answers at once: 204 to any POST, and to a GET the core endpoint's own body and headers
  (captured from the imstags server before measuring).

The ratio imstags/trivial is what the service's own work costs on top of the HTTP server and
the client, the two things it cannot avoid. Each figure is the median of ``--rounds`` runs;
the runs of the two servers alternate, so that other load on the machine falls on both alike.

Measured:

- **read**: ``GET /v2/{project}/images/tags``, one pre-signed request replayed. wrk replays
  pre-signed requests, so after the first one the signature memo answers the rest (a bodiless
  request whose signed parts repeat byte for byte; see docs/performance.md, "The signature
  memo"). A real client re-signs each request, so **read, distinct** also runs: 5,000 requests
  (``--distinct``) each with its own signed nonce header (the SDK signs every header it sends),
  more than the memo keeps between two visits, so every one is verified in full.
- **write**: ``POST /v2/{project}/images/{id}/tags/action`` cycling over 64 images, each
  creating 3 tags and then deleting them, so that every request really writes. A request with a
  body never enters the memo: each write is verified in full, whether or not its bytes repeat.

    .venv/bin/python -m benchmarks.round_trip \\
        --postgres postgresql://postgres@127.0.0.1:5432/postgres --json round-trip.json

``--baseline-src <other checkout>/src`` also runs that version of the server, in the same
alternation, so that before and after see the same load on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.harness import (
    PROJECT,
    PYTHON,
    Server,
    Target,
    _found,
    _ms,
    ensure_wrk,
    free_port,
    image_ids,
    imstags,
    load,
    lua_requests,
    postgres_target,
    server_env,
    signed_headers,
    sqlite_target,
)

TRIVIAL_RESPONSE_VARIABLE = "ROUND_TRIP_TRIVIAL_RESPONSE"
"""A JSON file with the status, headers and body the trivial server answers a GET with."""

# --- the trivial server -----------------------------------------------------------------------


def create_trivial_app() -> Any:
    """Factory for uvicorn (``run_server``): a bare ASGI callable, no framework, no middleware.
    A GET gets the captured core-endpoint response; anything else 204."""
    captured = json.loads(Path(os.environ[TRIVIAL_RESPONSE_VARIABLE]).read_text())
    get_start = {
        "type": "http.response.start",
        "status": captured["status"],
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in captured["headers"]],
    }
    get_body = {"type": "http.response.body", "body": captured["body"].encode()}
    no_content = {"type": "http.response.start", "status": 204, "headers": []}
    empty = {"type": "http.response.body", "body": b""}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # lifespan: nothing to start or stop
            message = await receive()
            while message["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
                message = await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["method"] == "GET":
            await send(get_start)
            await send(get_body)
            return
        while (await receive()).get("more_body", False):  # read the body, as a server must
            pass
        await send(no_content)
        await send(empty)

    return app


def trivial_main(port: int, response_file: Path, workdir: Path) -> None:
    """Run the trivial app through ``imstags serve``'s own server code (its migration step
    gets a throwaway SQLite file)."""
    from imstags.cli.serve import run_server
    from imstags.settings import Settings

    os.environ[TRIVIAL_RESPONSE_VARIABLE] = str(response_file)
    settings = Settings.load(
        port=port,
        workers=1,
        log_level="warning",
        database_url=f"sqlite:///{workdir / 'trivial.db'}",
    )
    run_server(settings, f"{__name__}:create_trivial_app")


# --- servers ----------------------------------------------------------------------------------


@contextmanager
def running(cmd: list[str], env: dict[str, str], log: Path, probe: str) -> Iterator[Server]:
    """A server process, once ``probe`` answers; stopped (its group) at the end."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*cmd, "--port", str(port)], env=env, stdout=out, stderr=out, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited early; see {log}")
            try:
                httpx.get(base + probe, timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield Server(base, process)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- wrk --------------------------------------------------------------------------------------


def wrk_c1(wrk: str, server: Server, script: Path, duration: int) -> dict[str, float]:
    """One sequential run: p50 and mean latency (ms), requests/s, answers not 2xx/3xx, and the
    server's CPU time per request (µs), which the machine's other load disturbs far less than
    latency."""
    cmd = [wrk, "-t1", "-c1", f"-d{duration}s", "--latency", "--timeout", "5s", "-s", str(script)]
    cpu_before = server.cpu_seconds()
    out = subprocess.run([*cmd, server.base_url], check=True, capture_output=True, text=True)
    cpu = server.cpu_seconds() - cpu_before
    out = out.stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = int(_found(r"(\d+) requests in", out).group(1))
    return {
        "server_cpu_us": cpu * 1e6 / max(total, 1),
        "p50_ms": _ms(_found(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
        "mean_ms": _ms(_found(r"^\s+Latency\s+(\S+)", out, re.M).group(1)),
        "requests_per_s": float(_found(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
    }


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}


# --- the requests -----------------------------------------------------------------------------


def read_requests(
    base: str, ak: str, sk: str, distinct: int
) -> list[tuple[str, str, dict[str, str], bytes]]:
    """One signed core-endpoint GET, or ``distinct`` ones that differ in a signed nonce."""
    path = f"/v2/{PROJECT}/images/tags"
    if not distinct:
        return [("GET", path, signed_headers("GET", base + path, ak, sk), b"")]
    return [("GET", path, nonce_signed(base + path, ak, sk), b"") for _ in range(distinct)]


def nonce_signed(url: str, ak: str, sk: str) -> dict[str, str]:
    from urllib.parse import urlsplit

    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.sdk_request import SdkRequest
    from huaweicloudsdkcore.signer.signer import Signer

    parts = urlsplit(url)
    request = SdkRequest(
        method="GET",
        schema=parts.scheme,
        host=parts.netloc,
        resource_path=parts.path,
        query_params=[],
        header_params={"Content-Type": "application/json", "X-Client-Nonce": uuid.uuid4().hex},
        body=b"",
    )
    signed = Signer(BasicCredentials(ak, sk)).sign(request)
    return {k: str(v) for k, v in signed.header_params.items()}


def write_requests(
    base: str, target: Target, ak: str, sk: str
) -> list[tuple[str, str, dict[str, str], bytes]]:
    """64 images x (create 3 tags, delete them), after making room for 3 tags on each."""
    ids = image_ids(target, 64)
    for image_id in ids:
        path = f"/v2/{PROJECT}/images/{image_id}/tags"
        got = httpx.get(
            base + path, headers=signed_headers("GET", base + path, ak, sk), timeout=30
        ).json()["tags"]
        keep = [t for t in got if not t["key"].startswith("bench")]
        surplus = max(0, len(keep) - 7)
        doomed = [{"key": t["key"]} for t in got if t["key"].startswith("bench")]
        doomed += [{"key": t["key"]} for t in keep[:surplus]]
        if doomed:
            body = json.dumps({"action": "delete", "tags": doomed}).encode()
            url = f"{base}{path}/action"
            httpx.post(
                url, content=body, headers=signed_headers("POST", url, ak, sk, body), timeout=30
            ).raise_for_status()
    writes = []
    for action in ("create", "delete"):
        for image_id in ids:
            path = f"/v2/{PROJECT}/images/{image_id}/tags/action"
            body = json.dumps(
                {"action": action, "tags": [{"key": f"bench{i}", "value": "x"} for i in range(3)]}
            ).encode()
            writes.append(("POST", path, signed_headers("POST", base + path, ak, sk, body), body))
    return writes


def capture_core_response(base: str, ak: str, sk: str, file: Path) -> int:
    """The core endpoint's answer as the trivial server is to repeat it; returns its size."""
    url = f"{base}/v2/{PROJECT}/images/tags"
    response = httpx.get(url, headers=signed_headers("GET", url, ak, sk), timeout=30)
    response.raise_for_status()
    # uvicorn adds date and server itself, on both servers.
    headers = [(k, v) for k, v in response.headers.items() if k not in ("date", "server")]
    file.write_text(
        json.dumps({"status": response.status_code, "headers": headers, "body": response.text})
    )
    return len(response.content)


# --- one database -----------------------------------------------------------------------------


def measure(
    wrk: str, env: dict[str, str], target: Target, workdir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    credential = json.loads(
        imstags(
            {**env, "IMSTAGS_DATABASE_URL": target.url},
            "credentials",
            "create",
            "--project-id",
            PROJECT,
        ).stdout  # fmt: skip
    )
    ak, sk = credential["access"], credential["secret"]
    log = workdir / "round-trip.log"
    real_env = {**env, "IMSTAGS_DATABASE_URL": target.url}
    real_cmd = [PYTHON, "-m", "imstags", "serve", "--workers", "1", "--log-level", "warning"]
    trivial_cmd = [PYTHON, "-m", "benchmarks.round_trip", "--trivial", "--workdir", str(workdir)]
    response_file = workdir / "trivial-response.json"
    figures: dict[str, Any] = {}
    with running(real_cmd, real_env, log, "/") as real:
        url = real.base_url
        figures["body_bytes"] = capture_core_response(url, ak, sk, response_file)
        scripts = {
            "read": lua_requests(workdir / "rt-read.lua", read_requests(url, ak, sk, 0)),
            "read_distinct": lua_requests(
                workdir / "rt-read-distinct.lua", read_requests(url, ak, sk, args.distinct)
            ),
            "write": lua_requests(workdir / "rt-write.lua", write_requests(url, target, ak, sk)),
        }
        with ExitStack() as stack:
            servers = {"trivial": stack.enter_context(running(trivial_cmd, env, log, "/"))}
            servers["imstags"] = real
            if args.baseline_src:
                baseline_env = {**real_env, "PYTHONPATH": str(args.baseline_src)}
                servers["baseline"] = stack.enter_context(running(real_cmd, baseline_env, log, "/"))
            for script in scripts.values():  # warm-up
                for server in servers.values():
                    wrk_c1(wrk, server, script, 1)
            runs: dict[str, dict[str, list[dict[str, float]]]] = {
                kind: {name: [] for name in servers} for kind in scripts
            }
            for _ in range(args.rounds):
                for kind, script in scripts.items():
                    for name, server in servers.items():
                        runs[kind][name].append(wrk_c1(wrk, server, script, args.duration))
    for kind, per_server in runs.items():
        got: dict[str, Any] = {name: medians(r) for name, r in per_server.items()}
        for name in set(per_server) - {"trivial"}:
            got[name]["ratio_p50"] = got[name]["p50_ms"] / got["trivial"]["p50_ms"]
            got[name]["ratio_mean"] = got[name]["mean_ms"] / got["trivial"]["mean_ms"]
        figures[kind] = got
    return figures


def table(results: dict[str, Any]) -> str:
    rows = [
        "| database | request | server | trivial p50 / mean ms | server p50 / mean ms "
        "| ratio p50 / mean | server CPU µs trivial / server | server non-2xx |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, figures in results["databases"].items():
        for kind in ("read", "read_distinct", "write"):
            t = figures[kind]["trivial"]
            for server in ("imstags", "baseline"):
                i = figures[kind].get(server)
                if i is None:
                    continue
                rows.append(
                    f"| {name} | {kind.replace('_', ', ')} | {server} "
                    f"| {t['p50_ms']:.3f} / {t['mean_ms']:.3f} "
                    f"| {i['p50_ms']:.3f} / {i['mean_ms']:.3f} "
                    f"| {i['ratio_p50']:.2f} / {i['ratio_mean']:.2f} "
                    f"| {t['server_cpu_us']:.0f} / {i['server_cpu_us']:.0f} "
                    f"| {i['non_2xx']:.0f} |"
                )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1000, help="images of workload W")
    parser.add_argument("--postgres", help="PostgreSQL server URL (a database is made on it)")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="alternated runs per server")
    parser.add_argument("--distinct", type=int, default=5000, help="distinct signed reads")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "imstags-bench"
    )
    parser.add_argument("--json", type=Path, default=Path("round-trip.json"))
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="the src directory of another checkout: its server is measured alongside, "
        "in the same alternation (e.g. the code before a change)",
    )
    parser.add_argument("--trivial", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trivial:
        trivial_main(args.port, args.workdir / "trivial-response.json", args.workdir)
        return

    wrk = ensure_wrk()
    env = server_env(args.workdir)
    targets = [] if args.no_sqlite else [sqlite_target(args.workdir, args.size)]
    if args.postgres:
        # Its own database name, so that it never drops the one benchmarks.run loaded.
        pg = postgres_target(args.postgres, args.size)
        targets.append(Target(pg.name, pg.url.replace("imstags_bench_", "imstags_round_trip_")))
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "command": " ".join(sys.argv),
        "load_average_before": os.getloadavg(),
        "wrk": f"-t1 -c1 -d{args.duration}s, median of {args.rounds} alternated runs",
        "databases": {},
    }
    for target in targets:
        print(f"== {target.name}, N={args.size:,}: loading", file=sys.stderr)
        load(env, target, args.workdir, args.size, False)
        print(f"== {target.name}: measuring", file=sys.stderr)
        results["databases"][target.name] = measure(wrk, env, target, args.workdir, args)
    results["load_average_after"] = os.getloadavg()
    print(table(results))
    print(
        "load average before / after: "
        + " / ".join(
            ", ".join(f"{x:.2f}" for x in results[k])
            for k in ("load_average_before", "load_average_after")
        )  # fmt: skip
    )
    args.json.write_text(json.dumps(results, indent=2))
    print(f"figures written to {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
