"""Several server processes on one database: throughput and read-your-writes across them.

For each database (PostgreSQL with ``--postgres URL``; SQLite too with ``--sqlite``) it loads
workload W with ``--images`` N images (default 1,000; kept in ``--workdir`` and reused, as in
``run.py``) and measures four configurations, each started with the real CLI:

- ``imstags serve --workers 1``, ``--workers 2`` and ``--workers 4`` (one port; the kernel
  hands each new connection to one of the K worker processes);
- two separate ``imstags serve`` instances (one worker each, two ports, same database).

For each configuration:

1. **Core endpoint** ``GET /v2/{project}/images/tags``, signed by the SDK's signer, pre-signed
   into wrk Lua scripts, ``--connections`` (16) connections in all: requests/s, p50/p99, and
   server CPU per request. After a 2 s warm-up, the median of ``--rounds`` runs of
   ``--duration`` seconds.
2. **Tag writes** ``POST .../images/{id}/tags/action``, as in ``run.py``: 64 images per wrk, each
   creating 3 tags and then deleting them, 64 requests apart, so no two requests in flight touch
   one image and every request changes something. Before each run the images are brought to 7
   tags (untimed); afterwards the bench tags are removed and the core endpoint's body must equal
   the one before: the aggregate is exact after thousands of concurrent writes
   (``aggregate_exact``).
3. **Consistency**: a write through one process is seen at once through every other. It opens
   fresh keep-alive connections (``http.client``, signed like the SDK) until there are at least
   4 per process *and* every process holds at least one, and finds out which process holds
   each connection: the server side of each loopback TCP connection is looked up in
   ``/proc/net/tcp`` and its socket inode among the file descriptors of the server's
   processes. (The service exposes no process id, and with K workers on one port the kernel
   chooses the worker; this way the spread is known, not assumed, and printed.) Each of those
   connections first reads the core endpoint, so every process has the body cached. Then, in
   each of ``--checks`` rounds, one connection (round-robin) sets a new value of the tag
   ``consistency`` on a probe image and waits for its 204; at once every other connection
   reads the core endpoint, and a read is a violation unless its body holds the new value
   (and only it) and its ETag differs from the one that connection saw the round before. It
   counts rounds, reads, reads through a process other than the writer's, and violations.

The client side is the same in every configuration: ``--wrk-processes`` (2) wrk processes
(``-t1`` each) run at the same time with ``--connections`` split between them (8 + 8). wrk loads
one port per run, so with two instances each wrk loads one instance; with K workers both load
the one port. (One wrk for one port against two for two ports would measure the client as much
as the server: on a busy 2-core machine two wrks get more CPU than one.) The runs' requests/s
add up; the p50/p99 shown is the larger of the runs' (each is in the JSON); CPU per request is
the servers' CPU (every process, from /proc) over all the runs' requests.

wrk, the K workers and PostgreSQL share the machine's cores, so throughput cannot grow with K
past the core count; the 1-minute load average at the start of each configuration is printed
beside its figures, since other load on the machine moves them.

It drives the service only through the CLI (``imstags serve``, ``credentials create``,
``images import``, ``db upgrade``) and HTTP, plus the harness's one ``SELECT`` of image ids from
the ``images`` table, so it also runs against older versions of the service (to compare before
and after a change).

    .venv/bin/python -m benchmarks.processes \\
        --postgres postgresql://postgres@127.0.0.1:5432/postgres [--sqlite] --json procs.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    PROJECT,
    PYTHON,
    Server,
    Target,
    ensure_wrk,
    free_port,
    image_ids,
    imstags,
    load,
    lua_requests,
    postgres_target,
    run_wrk,
    server_env,
    signed_headers,
    sqlite_target,
)

CONFIGURATIONS = {
    "1 worker": (1, 1),  # name: (instances, workers per instance)
    "2 workers": (1, 2),
    "4 workers": (1, 4),
    "2 instances": (2, 1),
}
WRITE_IMAGES = 64  # per instance
PROBE_KEY = "consistency"


# --- which process holds a connection ---------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """The server's process and its children (uvicorn's workers), every thread's children."""
    pids = [pid]
    tasks = Path(f"/proc/{pid}/task")
    if tasks.exists():
        for task in tasks.iterdir():
            children = task / "children"
            if children.exists():
                pids += [int(child) for child in children.read_text().split()]
    return pids


def _server_socket_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the server side of the loopback TCP connection from ``client_port``."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == (
            client_port
        ):
            return fields[9]
    return None


def owner_pid(server_pids: list[int], server_port: int, client_port: int) -> int | None:
    """Which of ``server_pids`` holds the accepted end of the connection from ``client_port``."""
    inode = _server_socket_inode(server_port, client_port)
    if inode is None:
        return None
    wanted = f"socket:[{inode}]"
    for pid in server_pids:
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in descriptors:
            try:
                if os.readlink(fd) == wanted:
                    return pid
            except OSError:
                continue
    return None


def connections_held(pid: int, port: int) -> dict[int, int]:
    """How many established connections to ``port`` each process of ``pid``'s tree holds
    (those holding none left out)."""
    established = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":  # ESTABLISHED
            established.add(f"socket:[{fields[9]}]")
    counts: dict[int, int] = {}
    for process in process_tree(pid):
        held = 0
        try:
            descriptors = list(Path(f"/proc/{process}/fd").iterdir())
        except OSError:
            continue
        for fd in descriptors:
            try:
                held += os.readlink(fd) in established
            except OSError:
                continue
        if held:
            counts[process] = held
    return counts


def connections_by_process(server: Server) -> list[int]:
    """How many established connections to ``server``'s port each of its processes holds,
    largest first (the spread of a wrk run's connections over the workers)."""
    port = int(server.base_url.rsplit(":", 1)[1])
    return sorted(connections_held(server.process.pid, port).values(), reverse=True)


# --- signed keep-alive connections --------------------------------------------------------------


@dataclass
class Endpoint:
    """One listening server: where it is, its top process and how many workers it has."""

    base_url: str
    pid: int
    workers: int

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])


class Connection:
    """One kept-alive HTTP connection to one endpoint; requests signed as the SDK signs them."""

    def __init__(
        self, endpoint: Endpoint, ak: str, sk: str, project: str, timeout: float = 30
    ) -> None:
        self.endpoint = endpoint
        self.ak, self.sk, self.project = ak, sk, project
        self.http = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=timeout)
        self.http.connect()
        self.pid: int | None = None
        self.last_etag: str | None = None

    @property
    def client_port(self) -> int:
        assert self.http.sock is not None
        return int(self.http.sock.getsockname()[1])

    def request(
        self, method: str, path: str, body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        headers = signed_headers(method, self.endpoint.base_url + path, self.ak, self.sk, body)
        self.http.request(method, path, body=body or None, headers=headers)
        response = self.http.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()

    def core(self) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", f"/v2/{self.project}/images/tags")

    def locate(self) -> int | None:
        """The server process holding this connection (it must have answered once)."""
        self.pid = owner_pid(process_tree(self.endpoint.pid), self.endpoint.port, self.client_port)
        return self.pid

    def close(self) -> None:
        self.http.close()


def spread_connections(
    endpoints: list[Endpoint],
    ak: str,
    sk: str,
    *,
    project: str = PROJECT,
    per_process: int = 4,
    limit: int = 256,
    timeout: float = 60,
) -> list[Connection]:
    """Fresh connections, round-robin over the endpoints, until there are ``per_process`` per
    server process in all and every process holds at least one (each connection reads the core
    endpoint once: then its process is known and has the body cached).

    A worker gets connections only once it listens, after building its app, which on a busy
    machine can be seconds after the first worker answers: if ``limit`` connections miss a
    process, they are closed and it tries again, for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        opened = _spread_once(endpoints, ak, sk, project, per_process, limit)
        processes = sum(endpoint.workers for endpoint in endpoints)
        reached = {c.pid for c in opened if c.pid is not None}
        if len(reached) >= processes:
            return opened
        for connection in opened:
            connection.close()
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{limit} connections reached only {len(reached)} of {processes} processes"
            )
        time.sleep(0.5)


def _spread_once(
    endpoints: list[Endpoint], ak: str, sk: str, project: str, per_process: int, limit: int
) -> list[Connection]:
    processes = sum(endpoint.workers for endpoint in endpoints)
    opened: list[Connection] = []
    try:
        while len(opened) < limit:
            connection = Connection(endpoints[len(opened) % len(endpoints)], ak, sk, project)
            opened.append(connection)
            status, _, body = connection.core()
            if status != 200:
                raise RuntimeError(f"core endpoint answered {status}: {body[:300]!r}")
            connection.locate()
            held = {c.pid for c in opened if c.pid is not None}
            if len(opened) >= per_process * processes and len(held) >= processes:
                break
        return opened
    except BaseException:
        for connection in opened:
            connection.close()
        raise


# --- the consistency check ------------------------------------------------------------------------


@dataclass
class Consistency:
    rounds: int = 0
    reads: int = 0
    cross_process_reads: int = 0
    violations: int = 0
    rounds_with_violations: int = 0
    connections: int = 0
    connections_per_process: dict[str, int] = field(default_factory=dict)
    first_violations: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _probe_values(body: bytes) -> list[str] | None:
    for tag in json.loads(body)["tags"]:
        if tag["key"] == PROBE_KEY:
            return list(tag["values"])
    return None


def consistency_check(
    endpoints: list[Endpoint],
    ak: str,
    sk: str,
    *,
    rounds: int,
    project: str = PROJECT,
    per_process: int = 4,
) -> Consistency:
    """``rounds`` rounds of: write a new value through one connection, read it at once through
    every other (see the module docstring). The probe image is created first and deleted at
    the end, so the project's tags are as they were."""
    connections = spread_connections(endpoints, ak, sk, project=project, per_process=per_process)
    result = Consistency(connections=len(connections))
    result.connections_per_process = {
        str(pid): count for pid, count in Counter(c.pid for c in connections).items()
    }
    first = connections[0]
    status, _, body = first.request(
        "POST", "/v2/images", json.dumps({"name": "consistency-probe"}).encode()
    )
    if status != 201:
        raise RuntimeError(f"creating the probe image answered {status}: {body[:300]!r}")
    image_id = json.loads(body)["id"]
    action_path = f"/v2/{project}/images/{image_id}/tags/action"
    try:
        for connection in connections:  # every process's cache holds the current body
            _, headers, _ = connection.core()
            connection.last_etag = headers.get("etag")
        for number in range(rounds):
            writer = connections[number % len(connections)]
            value = f"r{number}-{time.monotonic_ns()}"
            body = json.dumps(
                {"action": "create", "tags": [{"key": PROBE_KEY, "value": value}]}
            ).encode()
            status, _, answer = writer.request("POST", action_path, body)
            if status != 204:
                raise RuntimeError(f"the write answered {status}: {answer[:300]!r}")
            _, writer_headers, _ = writer.core()
            writer.last_etag = writer_headers.get("etag")
            bad = 0
            for reader in connections:
                if reader is writer:
                    continue
                status, headers, answer = reader.core()
                etag = headers.get("etag")
                result.reads += 1
                result.cross_process_reads += reader.pid != writer.pid
                seen = _probe_values(answer) if status == 200 else None
                if status != 200 or seen != [value] or etag is None or etag == reader.last_etag:
                    bad += 1
                    if len(result.first_violations) < 5:
                        result.first_violations.append(
                            f"round {number}: wrote {value} via pid {writer.pid}, read via pid "
                            f"{reader.pid}: status {status}, values {seen}, etag {etag} "
                            f"(before {reader.last_etag})"
                        )
                reader.last_etag = etag
            result.rounds += 1
            result.violations += bad
            result.rounds_with_violations += bad > 0
    finally:
        status, _, answer = first.request("DELETE", f"/v2/images/{image_id}")
        for connection in connections:
            connection.close()
        if status != 204:
            raise RuntimeError(f"deleting the probe image answered {status}: {answer[:300]!r}")
    return result


# --- servers ------------------------------------------------------------------------------------


@contextmanager
def serve_cli(env: dict[str, str], target: Target, workers: int, log: Path) -> Iterator[Server]:
    """``imstags serve --workers K`` on a free port, once it answers HTTP."""
    port = free_port()
    cmd = [PYTHON, "-m", "imstags", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--log-level", "warning"]  # fmt: skip
    with log.open("ab") as out:
        process = subprocess.Popen(
            cmd, env={**env, "IMSTAGS_DATABASE_URL": target.url}, stdout=out, stderr=out,
            start_new_session=True,
        )  # fmt: skip
    server = Server(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 60 * workers
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"imstags serve exited early; see {log}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/v2/x/images/tags")  # any answer (401) will do
                connection.getresponse().read()
                connection.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the server and its workers, nothing else
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def all_workers_serving(endpoints: list[Endpoint], ak: str, sk: str) -> None:
    """Returns once every worker process has answered a request: uvicorn's parent listens
    before each worker has built its app, and a wrk run should not start before that."""
    for connection in spread_connections(endpoints, ak, sk, per_process=1):
        connection.close()


# --- throughput ---------------------------------------------------------------------------------


def wrk_together(
    wrk: str,
    clients: list[Server],
    scripts: list[Path],
    *,
    connections: int,
    duration: int,
) -> dict[str, Any]:
    """One wrk per entry of ``clients`` (the server it loads), all at the same time, with
    ``connections`` split between them. The server CPU per request is that of every server
    (each counted once) over the requests of all the runs."""
    servers = list({id(server): server for server in clients}.values())
    each = max(1, connections // len(clients))
    cpu_before = sum(server.cpu_seconds() for server in servers)
    started = time.monotonic()
    with ThreadPoolExecutor(len(clients)) as pool:
        pending = pool.map(
            lambda pair: run_wrk(wrk, pair[0].base_url, connections=each,
                                 duration=duration, script=pair[1]),
            zip(clients, scripts, strict=True),
        )  # fmt: skip
        time.sleep(min(1.0, duration / 2))  # wrk has opened its connections by now
        spread = [connections_by_process(server) for server in servers]
        runs = list(pending)
    elapsed = time.monotonic() - started
    cpu = sum(server.cpu_seconds() for server in servers) - cpu_before
    total = sum(run.requests_per_s for run in runs)
    return {
        "requests_per_s": total,
        "p50_ms": max(run.p50_ms for run in runs),
        "p99_ms": max(run.p99_ms for run in runs),
        "non_2xx": sum(run.non_2xx for run in runs),
        "errors": sum(run.errors for run in runs),
        # wrk's requests/s is over its own -d; the CPU is over the whole window (start-up
        # included), so this slightly overstates the cost per request, alike for every row.
        "server_cpu_us_per_request": cpu * 1e6 / max(total * duration, 1e-9),
        "window_s": elapsed,
        # wrk's connections held by each server process (per instance, largest first): the
        # kernel, not uvicorn, picks the worker that accepts each, and it need not be even.
        "wrk_connections_per_process": spread,
        "per_wrk": [
            {**run.as_dict(), "server": server.base_url}
            for run, server in zip(runs, clients, strict=True)
        ],
    }


def median_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [key for key, value in runs[0].items() if isinstance(value, int | float)]
    median = {key: statistics.median(run[key] for run in runs) for key in keys}
    median["runs"] = runs
    return median


def _post(base_url: str, path: str, ak: str, sk: str, payload: dict[str, Any]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", int(base_url.rsplit(":", 1)[1]))
    body = json.dumps(payload).encode()
    connection.request(
        "POST", path, body=body, headers=signed_headers("POST", base_url + path, ak, sk, body)
    )
    status = connection.getresponse().status
    connection.close()
    return status


def tidy_images(base_url: str, ak: str, sk: str, ids: list[str]) -> None:
    """Each image without bench tags and with at most 7 tags, so that 3 more fit (W's images
    have 10, the most an image may have)."""
    connection = http.client.HTTPConnection("127.0.0.1", int(base_url.rsplit(":", 1)[1]))
    for image_id in ids:
        path = f"/v2/{PROJECT}/images/{image_id}/tags"
        connection.request("GET", path, headers=signed_headers("GET", base_url + path, ak, sk))
        response = connection.getresponse()
        tags = json.loads(response.read())["tags"]
        bench = [tag for tag in tags if tag["key"].startswith("bench")]
        others = [tag for tag in tags if not tag["key"].startswith("bench")]
        drop = bench + others[: max(0, len(others) - 7)]
        if drop:
            payload = {"action": "delete", "tags": [{"key": tag["key"]} for tag in drop]}
            status = _post(base_url, f"{path}/action", ak, sk, payload)
            if status != 204:
                raise RuntimeError(f"tidying {image_id} answered {status}")
    connection.close()


def write_script(path: Path, base_url: str, ak: str, sk: str, ids: list[str]) -> Path:
    writes = []
    for action in ("create", "delete"):
        for image_id in ids:
            req_path = f"/v2/{PROJECT}/images/{image_id}/tags/action"
            body = json.dumps(
                {"action": action, "tags": [{"key": f"bench{i}", "value": "x"} for i in range(3)]}
            ).encode()
            writes.append(("POST", req_path, signed_headers("POST", base_url + req_path, ak, sk,
                                                            body), body))  # fmt: skip
    return lua_requests(path, writes)


def core_body(base_url: str, ak: str, sk: str) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", int(base_url.rsplit(":", 1)[1]))
    path = f"/v2/{PROJECT}/images/tags"
    connection.request("GET", path, headers=signed_headers("GET", base_url + path, ak, sk))
    response = connection.getresponse()
    body = response.read()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"core endpoint answered {response.status}: {body[:300]!r}")
    return body


# --- one configuration ------------------------------------------------------------------------


def measure_configuration(
    wrk: str,
    env: dict[str, str],
    target: Target,
    credential: dict[str, str],
    ids: list[str],
    baseline: bytes,
    args: argparse.Namespace,
    instances: int,
    workers: int,
) -> dict[str, Any]:
    ak, sk = credential["access"], credential["secret"]
    log = args.workdir / "processes-server.log"
    figures: dict[str, Any] = {
        "instances": instances,
        "workers_per_instance": workers,
        "load_average_before": _load_average(),
    }
    with ExitStack() as stack:
        servers = [stack.enter_context(serve_cli(env, target, workers, log))
                   for _ in range(instances)]  # fmt: skip
        endpoints = [Endpoint(s.base_url, s.process.pid, workers) for s in servers]
        all_workers_serving(endpoints, ak, sk)
        # The same client side for every configuration: --wrk-processes wrk processes, spread
        # round-robin over the instances; each its own pre-signed script (the Host is signed).
        clients = [servers[i % len(servers)] for i in range(args.wrk_processes)]
        core_path = f"/v2/{PROJECT}/images/tags"
        core_scripts = [
            lua_requests(args.workdir / f"procs-core-{i}.lua",
                         [("GET", core_path, signed_headers("GET", s.base_url + core_path, ak,
                                                             sk), b"")])
            for i, s in enumerate(clients)
        ]  # fmt: skip
        wrk_together(wrk, clients, core_scripts, connections=args.connections, duration=2)
        figures["core"] = median_runs(
            [wrk_together(wrk, clients, core_scripts, connections=args.connections,
                          duration=args.duration) for _ in range(args.rounds)]
        )  # fmt: skip

        # Each wrk process writes to its own 64 images, so that no two clients touch one image.
        groups = [ids[i * WRITE_IMAGES : (i + 1) * WRITE_IMAGES] for i in range(len(clients))]
        write_scripts = [
            write_script(args.workdir / f"procs-writes-{i}.lua", s.base_url, ak, sk, group)
            for i, (s, group) in enumerate(zip(clients, groups, strict=True))
        ]
        runs = []
        exact = True
        for _ in range(args.rounds):
            tidy_images(servers[0].base_url, ak, sk, ids)
            runs.append(wrk_together(wrk, clients, write_scripts, connections=args.connections,
                                     duration=args.duration))  # fmt: skip
            tidy_images(servers[0].base_url, ak, sk, ids)
            exact &= all(core_body(s.base_url, ak, sk) == baseline for s in servers)
        figures["tag_writes"] = median_runs(runs)
        figures["aggregate_exact"] = exact

        started = time.monotonic()
        figures["consistency"] = consistency_check(endpoints, ak, sk, rounds=args.checks).as_dict()
        figures["consistency"]["seconds"] = time.monotonic() - started
        figures["peak_rss_mb_per_process"] = max(s.peak_rss_mb() for s in servers)
    return figures


# --- the table and main ------------------------------------------------------------------------


def table(results: dict[str, Any]) -> str:
    rows = [
        "| database | configuration | core req/s | core p50 / p99 ms | core CPU µs/req "
        "| writes req/s | writes p50 / p99 ms | aggregate exact | rounds | reads (cross-process) "
        "| violations | connections per process | load avg (1 min) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: |",
    ]
    for database, configurations in results["databases"].items():
        for name, f in configurations.items():
            core, writes, check = f["core"], f["tag_writes"], f["consistency"]
            failed = core["non_2xx"] + core["errors"] + writes["non_2xx"] + writes["errors"]
            rows.append(
                f"| {database} | {name} | {core['requests_per_s']:,.0f} "
                f"| {core['p50_ms']:.2f} / {core['p99_ms']:.2f} "
                f"| {core['server_cpu_us_per_request']:.0f} "
                f"| {writes['requests_per_s']:,.0f} "
                f"| {writes['p50_ms']:.2f} / {writes['p99_ms']:.2f} "
                f"| {'yes' if f['aggregate_exact'] else 'NO'} "
                f"| {check['rounds']} | {check['reads']:,} ({check['cross_process_reads']:,}) "
                f"| {check['violations']} "
                f"| {'/'.join(str(n) for n in sorted(check['connections_per_process'].values()))}"
                + (f" ({failed:.0f} failed requests)" if failed else "")
                + f" | {f['load_average_before'].split()[0]} |"
            )
    lines = ["\n".join(rows), ""]
    for database, configurations in results["databases"].items():
        for name, f in configurations.items():
            lines.append(
                f"{database}, {name}: wrk's connections per server process, core / writes: "
                f"{_spread(f['core'])} / {_spread(f['tag_writes'])}"
            )
            for violation in f["consistency"]["first_violations"]:
                lines.append(f"{database}, {name}: {violation}")
    lines.append(f"load average before / after: {results['load_before']} / {results['load_after']}")
    return "\n".join(lines)


def _spread(figure: dict[str, Any]) -> str:
    return " | ".join(
        "/".join(str(n) for n in counts)
        for counts in figure["runs"][0]["wrk_connections_per_process"]
    )


def _load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages: figures from a busy machine say so."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="PostgreSQL server URL (database imstags_bench_<N>)")
    parser.add_argument("--sqlite", action="store_true", help="also measure on SQLite")
    parser.add_argument("--images", type=int, default=1000, help="N, images of workload W")
    parser.add_argument(
        "--configurations", default=",".join(CONFIGURATIONS),
        help=f"comma-separated subset of: {', '.join(CONFIGURATIONS)}",
    )  # fmt: skip
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs per figure (median)")
    parser.add_argument("--connections", type=int, default=16, help="in all, over the wrks")
    parser.add_argument(
        "--wrk-processes", type=int, default=2,
        help="wrk processes (-t1 each) per run, in every configuration (at least 2)",
    )  # fmt: skip
    parser.add_argument("--checks", type=int, default=200, help="consistency rounds")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "imstags-bench"
    )
    parser.add_argument("--fresh", action="store_true", help="reload databases loaded before")
    parser.add_argument("--json", type=Path, default=Path("processes-results.json"))
    args = parser.parse_args()
    if not (args.postgres or args.sqlite):
        parser.error("give --postgres URL, --sqlite or both")
    names = [name.strip() for name in args.configurations.split(",")]
    unknown = [name for name in names if name not in CONFIGURATIONS]
    if unknown:
        parser.error(f"unknown configurations: {unknown}")
    if args.wrk_processes < max(instances for instances, _ in CONFIGURATIONS.values()):
        parser.error("--wrk-processes must be at least the number of instances (2)")
    if args.images < args.wrk_processes * WRITE_IMAGES:
        parser.error(f"--images must be at least {args.wrk_processes * WRITE_IMAGES}")

    wrk = ensure_wrk()
    env = server_env(args.workdir)
    targets: list[Target] = []
    if args.sqlite:
        targets.append(sqlite_target(args.workdir, args.images))
    if args.postgres:
        targets.append(postgres_target(args.postgres, args.images))
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "command": " ".join(sys.argv),
        "workload": f"W: 1 project, {args.images} images, 10 tags each, seed 1",
        "wrk": f"{args.wrk_processes} wrk processes at once (-t1 each), {args.connections} "
        f"connections in all, -d{args.duration}s, median of {args.rounds} runs",
        "load_before": _load_average(),
        "databases": {},
    }
    for target in targets:
        print(f"== {target.name}, N={args.images:,}: loading", file=sys.stderr)
        load(env, target, args.workdir, args.images, args.fresh)
        target_env = {**env, "IMSTAGS_DATABASE_URL": target.url}
        credential = json.loads(
            imstags(target_env, "credentials", "create", "--project-id", PROJECT).stdout
        )
        ids = image_ids(target, args.wrk_processes * WRITE_IMAGES)
        with serve_cli(env, target, 1, args.workdir / "processes-server.log") as server:
            tidy_images(server.base_url, credential["access"], credential["secret"], ids)
            baseline = core_body(server.base_url, credential["access"], credential["secret"])
        per_configuration: dict[str, Any] = {}
        results["databases"][target.name] = per_configuration
        for name in names:
            instances, workers = CONFIGURATIONS[name]
            print(f"== {target.name}: {name}", file=sys.stderr)
            per_configuration[name] = measure_configuration(
                wrk, env, target, credential, ids, baseline, args, instances, workers
            )
            args.json.write_text(json.dumps(results, indent=2))
    results["load_after"] = _load_average()
    print(table(results))
    args.json.write_text(json.dumps(results, indent=2))
    print(f"figures written to {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
