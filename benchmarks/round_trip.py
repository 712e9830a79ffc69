"""One client's round trip: imstags against a trivial server, for the core read and a tag write.

One client, one connection, requests one after the other, signed as the Huawei Cloud SDK signs
them (SDK-HMAC-SHA256). Two servers run side by side:

- **imstags**: ``imstags serve`` on a loaded workload-W database (N=1,000 by default: the
  database's size is not what is measured here);
- **trivial**: the same uvicorn with exactly the options ``imstags serve`` passes (it is started
  through :func:`imstags.cli.serve.run_server`), serving a bare ASGI callable with no framework
  that answers at once: 204 to any POST, and to a GET the core endpoint's own body and headers
  (captured from the imstags server before measuring).

The ratio imstags/trivial is what the service's own work costs on top of the HTTP server and
the client, the two things it cannot avoid. Each figure is the median of ``--rounds`` runs;
the runs of the servers alternate, so that other load on the machine falls on all alike.

Two clients (``--client wrk|sdk|both``), which answer two different questions:

- **wrk** (``wrk -t1 -c1``) replays requests signed beforehand and costs next to nothing per
  request, so its ratio is the server's own cost against the trivial server's: the harshest
  view, since the trivial server's round trip is then little more than the loopback.
- **sdk** is what one SDK-using client sees: a Python client in this process that, for every
  request, signs it anew with the SDK's own signer (one ``BasicCredentials`` held, a
  ``Signer`` per request, as ``BasicCredentials.sign_request`` does), sends it over one
  kept-alive ``http.client.HTTPConnection`` and reads the whole response. Each round trip is
  timed from before the signing to the last byte read, so the client's own work is in it, on
  both servers alike; its figures also give that work apart (signing µs, client CPU µs per
  request). ``--requests`` per run after ``--warmup`` unmeasured ones. The SDK itself costs
  more than this client: it sends through ``requests`` and signs on an executor thread, both
  of which this client leaves out, so its ratios are if anything the less flattering ones.

Measured:

- **read**: ``GET /v2/{project}/images/tags``. wrk replays one pre-signed request, so after the
  first one the signature memo answers the rest (a bodiless request whose signed parts repeat
  byte for byte; see docs/performance.md, "The signature memo"). The sdk client signs each one
  anew, and like the real SDK it sends nothing that changes within a second, so its requests
  repeat byte for byte within the second of their ``X-Sdk-Date``, and the memo answers all but
  the first of each second, as it would for that SDK. **read, distinct** adds a signed nonce
  header to each request (the SDK signs every header it sends), so every one is verified in
  full: for wrk 5,000 (``--distinct``) pre-signed ones, more than the memo keeps between two
  visits; for the sdk client a fresh nonce on every request.
- **write**: ``POST /v2/{project}/images/{id}/tags/action`` cycling over 64 images, each
  creating 3 tags and then deleting them, so that every request really writes (the sdk client
  sends whole cycles only, so each run leaves the images as it found them). A request with a
  body never enters the memo: each write is verified in full, whether or not its bytes repeat.

    .venv/bin/python -m benchmarks.round_trip \\
        --postgres postgresql://postgres@127.0.0.1:5432/postgres --json round-trip.json

``--baseline-src <other checkout>/src`` also runs that version of the server, in the same
alternation, so that before and after see the same load on the machine (both clients).
"""

from __future__ import annotations

import argparse
import http.client
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
from urllib.parse import urlsplit

import httpx
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

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
    out = subprocess.run([*cmd, server.base_url], check=True, capture_output=True, text=True).stdout
    cpu = server.cpu_seconds() - cpu_before
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

Unsigned = tuple[str, str, bytes]
"""Method, path and body of a request, to be signed when it is sent."""

Signed = tuple[str, str, dict[str, str], bytes]

CORE_PATH = f"/v2/{PROJECT}/images/tags"


def read_requests(base: str, ak: str, sk: str, distinct: int) -> list[Signed]:
    """One signed core-endpoint GET, or ``distinct`` ones that differ in a signed nonce."""
    if not distinct:
        return [("GET", CORE_PATH, signed_headers("GET", base + CORE_PATH, ak, sk), b"")]
    credentials = BasicCredentials(ak, sk)
    return [
        ("GET", CORE_PATH, sdk_signed(credentials, "GET", base + CORE_PATH, b"", True), b"")
        for _ in range(distinct)
    ]


def sdk_signed(
    credentials: BasicCredentials, method: str, url: str, body: bytes, nonce: bool
) -> dict[str, str]:
    """The headers the SDK's signer puts on this request, with a signed random
    ``X-Client-Nonce`` header if ``nonce``."""
    parts = urlsplit(url)
    headers = {"Content-Type": "application/json"}
    if nonce:
        headers["X-Client-Nonce"] = uuid.uuid4().hex
    request = SdkRequest(
        method=method,
        schema=parts.scheme,
        host=parts.netloc,
        resource_path=parts.path,
        query_params=[],
        header_params=headers,
        body=body,
    )
    signed = Signer(credentials).sign(request)
    return {k: str(v) for k, v in signed.header_params.items()}


def write_cycle(base: str, target: Target, ak: str, sk: str) -> list[Unsigned]:
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
            writes.append(("POST", path, body))
    return writes


def pre_signed(base: str, ak: str, sk: str, requests: list[Unsigned]) -> list[Signed]:
    return [
        (method, path, signed_headers(method, base + path, ak, sk, body), body)
        for method, path, body in requests
    ]


def capture_core_response(base: str, ak: str, sk: str, file: Path) -> int:
    """The core endpoint's answer as the trivial server is to repeat it; returns its size."""
    url = base + CORE_PATH
    response = httpx.get(url, headers=signed_headers("GET", url, ak, sk), timeout=30)
    response.raise_for_status()
    # uvicorn adds date and server itself, on both servers.
    headers = [(k, v) for k, v in response.headers.items() if k not in ("date", "server")]
    file.write_text(
        json.dumps({"status": response.status_code, "headers": headers, "body": response.text})
    )
    return len(response.content)


# --- the SDK client ---------------------------------------------------------------------------


def sdk_c1(
    server: Server,
    credentials: BasicCredentials,
    requests: list[Unsigned],
    count: int,
    nonce: bool,
) -> dict[str, float]:
    """``count`` requests one after the other on one kept-alive connection, cycling over
    ``requests``, each signed anew just before it is sent; each round trip timed from before
    its signing to the last byte of its response. Returns p50, p99 and mean (ms), requests/s,
    answers not 2xx, the mean signing time, and this process's and the server's CPU time per
    request (µs)."""
    parts = urlsplit(server.base_url)
    assert parts.hostname is not None
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.connect()
    latencies: list[float] = []
    signing = 0.0
    non_2xx = 0
    cpu_before, client_before = server.cpu_seconds(), time.process_time()
    began = time.perf_counter()
    try:
        for i in range(count):
            method, path, body = requests[i % len(requests)]
            start = time.perf_counter()
            headers = sdk_signed(credentials, method, server.base_url + path, body, nonce)
            signed = time.perf_counter()
            connection.request(method, path, body or None, headers)
            response = connection.getresponse()
            response.read()
            end = time.perf_counter()
            latencies.append(end - start)
            signing += signed - start
            if not 200 <= response.status < 400:
                non_2xx += 1
    finally:
        connection.close()
    elapsed = time.perf_counter() - began
    client_cpu = time.process_time() - client_before
    cpu = server.cpu_seconds() - cpu_before
    latencies.sort()
    return {
        "server_cpu_us": cpu * 1e6 / count,
        "client_cpu_us": client_cpu * 1e6 / count,
        "sign_us": signing * 1e6 / count,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3,
        "mean_ms": statistics.fmean(latencies) * 1e3,
        "requests_per_s": count / elapsed,
        "non_2xx": non_2xx,
    }


def whole_cycles(count: int, cycle: int) -> int:
    """``count`` rounded up to whole write cycles, so that each run leaves every image as it
    found it (a create of tags that already exist would not measure a real write)."""
    return -(-count // cycle) * cycle


# --- one database -----------------------------------------------------------------------------


def measure(
    wrk: str | None, env: dict[str, str], target: Target, workdir: Path, args: argparse.Namespace
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
    runs: dict[str, dict[str, dict[str, list[dict[str, float]]]]] = {}
    with running(real_cmd, real_env, log, "/") as real:
        url = real.base_url
        figures["body_bytes"] = capture_core_response(url, ak, sk, response_file)
        writes = write_cycle(url, target, ak, sk)
        with ExitStack() as stack:
            servers = {"trivial": stack.enter_context(running(trivial_cmd, env, log, "/"))}
            servers["imstags"] = real
            if args.baseline_src:
                baseline_env = {**real_env, "PYTHONPATH": str(args.baseline_src)}
                servers["baseline"] = stack.enter_context(running(real_cmd, baseline_env, log, "/"))
            # The sdk client first: the images are where write_cycle left them, and it sends
            # whole cycles only.
            if args.client in ("sdk", "both"):
                runs["sdk"] = sdk_rounds(servers, BasicCredentials(ak, sk), writes, args)
            if wrk is not None:
                # Signed now, so that the sdk runs before do not age them (15 minutes valid).
                scripts = {
                    "read": lua_requests(workdir / "rt-read.lua", read_requests(url, ak, sk, 0)),
                    "read_distinct": lua_requests(
                        workdir / "rt-read-distinct.lua",
                        read_requests(url, ak, sk, args.distinct),
                    ),
                    "write": lua_requests(
                        workdir / "rt-write.lua", pre_signed(url, ak, sk, writes)
                    ),
                }
                runs["wrk"] = wrk_rounds(wrk, servers, scripts, args)
    for client, per_kind in runs.items():
        figures[client] = {}
        for kind, per_server in per_kind.items():
            got: dict[str, Any] = {name: medians(r) for name, r in per_server.items()}
            for name in set(per_server) - {"trivial"}:
                got[name]["ratio_p50"] = got[name]["p50_ms"] / got["trivial"]["p50_ms"]
                got[name]["ratio_mean"] = got[name]["mean_ms"] / got["trivial"]["mean_ms"]
            figures[client][kind] = got
    return figures


def wrk_rounds(
    wrk: str, servers: dict[str, Server], scripts: dict[str, Path], args: argparse.Namespace
) -> dict[str, dict[str, list[dict[str, float]]]]:
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
    return runs


def sdk_rounds(
    servers: dict[str, Server],
    credentials: BasicCredentials,
    writes: list[Unsigned],
    args: argparse.Namespace,
) -> dict[str, dict[str, list[dict[str, float]]]]:
    read: list[Unsigned] = [("GET", CORE_PATH, b"")]
    kinds = {  # requests, count, warm-up, nonce
        "read": (read, args.requests, args.warmup, False),
        "read_distinct": (read, args.requests, args.warmup, True),
        "write": (
            writes,
            whole_cycles(args.requests, len(writes)),
            whole_cycles(args.warmup, len(writes)),
            False,
        ),
    }
    for requests, _, warmup, nonce in kinds.values():
        for server in servers.values():
            sdk_c1(server, credentials, requests, warmup, nonce)
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        kind: {name: [] for name in servers} for kind in kinds
    }
    for _ in range(args.rounds):
        for kind, (requests, count, _, nonce) in kinds.items():
            for name, server in servers.items():
                runs[kind][name].append(sdk_c1(server, credentials, requests, count, nonce))
    return runs


def table(results: dict[str, Any], client: str) -> str:
    rows = [
        "| database | request | server | trivial p50 / mean ms | server p50 / mean ms "
        "| ratio p50 / mean | server CPU µs trivial / server | server non-2xx |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    if client == "sdk":
        rows[0] += " client CPU µs / signing µs |"
        rows[1] += " ---: |"
    for name, figures in results["databases"].items():
        for kind in ("read", "read_distinct", "write"):
            t = figures[client][kind]["trivial"]
            for server in ("imstags", "baseline"):
                i = figures[client][kind].get(server)
                if i is None:
                    continue
                row = (
                    f"| {name} | {kind.replace('_', ', ')} | {server} "
                    f"| {t['p50_ms']:.3f} / {t['mean_ms']:.3f} "
                    f"| {i['p50_ms']:.3f} / {i['mean_ms']:.3f} "
                    f"| {i['ratio_p50']:.2f} / {i['ratio_mean']:.2f} "
                    f"| {t['server_cpu_us']:.0f} / {i['server_cpu_us']:.0f} "
                    f"| {i['non_2xx']:.0f} |"
                )
                if client == "sdk":
                    row += f" {i['client_cpu_us']:.0f} / {i['sign_us']:.0f} |"
                rows.append(row)
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1000, help="images of workload W")
    parser.add_argument("--postgres", help="PostgreSQL server URL (a database is made on it)")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument(
        "--client",
        choices=("wrk", "sdk", "both"),
        default="both",
        help="wrk: the server's cost with a client that costs nothing; "
        "sdk: what one SDK-using Python client sees",
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--requests", type=int, default=2000, help="requests per sdk run")
    parser.add_argument(
        "--warmup", type=int, default=256, help="unmeasured requests per server before sdk runs"
    )
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

    wrk = ensure_wrk() if args.client in ("wrk", "both") else None
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
        "clients": {
            "wrk": f"-t1 -c1 -d{args.duration}s, median of {args.rounds} alternated runs",
            "sdk": f"{args.requests} requests a run after {args.warmup} (writes: whole cycles "
            f"of 128), each signed anew, one http.client connection, median of {args.rounds} "
            "alternated runs",
        },
        "databases": {},
    }
    for target in targets:
        print(f"== {target.name}, N={args.size:,}: loading", file=sys.stderr)
        load(env, target, args.workdir, args.size, False)
        print(f"== {target.name}: measuring", file=sys.stderr)
        results["databases"][target.name] = measure(wrk, env, target, args.workdir, args)
    results["load_average_after"] = os.getloadavg()
    for client in ("sdk", "wrk"):
        if args.client in (client, "both"):
            print(f"\n{client} client ({results['clients'][client]})\n")
            print(table(results, client))
    print()
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
