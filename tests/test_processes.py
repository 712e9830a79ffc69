"""Read-your-writes across server processes, many times over: the consistency check of
``benchmarks/processes.py`` (issue 16, item 5) with two workers behind one port and with two
separate instances. Each round writes a new tag value through one connection and reads the
core endpoint at once through every other, on connections spread over the processes (the
check finds out which process holds each); a stale body or an unchanged ETag is a violation.

``test_workers.py`` walks through each kind of write once; this repeats one kind many times,
over more connections, so that a cache that is only sometimes stale shows up too.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from benchmarks.processes import (
    Connection,
    Endpoint,
    consistency_check,
    process_tree,
    spread_connections,
)

from tests.support.server import (
    RunningServer,
    server_environment,
    start_server,
    wait_until_serving,
)

ROUNDS = 30


def test_a_write_through_one_worker_is_seen_at_once_through_every_other(
    settings, db, credential, tmp_path
):
    with start_server(settings, tmp_path / "workers.log", workers=2) as server:
        endpoint = Endpoint(server.base_url, server.process.pid, workers=2)
        result = consistency_check(
            [endpoint], credential.access, credential.secret,
            rounds=ROUNDS, project=credential.project_id,
        )  # fmt: skip
    assert len(result.connections_per_process) == 2, result
    assert result.rounds == ROUNDS
    assert result.cross_process_reads > 0
    assert result.violations == 0, result.first_violations


def test_a_write_through_one_instance_is_seen_at_once_through_the_other(
    settings, db, credential, tmp_path
):
    with ExitStack() as stack:
        servers = [
            stack.enter_context(start_server(settings, tmp_path / f"s{i}.log")) for i in (1, 2)
        ]
        endpoints = [Endpoint(s.base_url, s.process.pid, workers=1) for s in servers]
        result = consistency_check(
            endpoints, credential.access, credential.secret,
            rounds=ROUNDS, project=credential.project_id,
        )  # fmt: skip
    assert sorted(result.connections_per_process) == sorted(str(s.process.pid) for s in servers)
    assert result.rounds == ROUNDS
    assert result.cross_process_reads > 0
    assert result.violations == 0, result.first_violations


# --- how connections spread over the workers ------------------------------------------------------

# Connections opened at once, as a client's pool or wrk opens them. The kernel spreads them over
# the workers' sockets by a hash of each connection's ports, so any one of 4 workers misses all
# of n connections with probability (3/4)^n: at 16 connections 4% of runs would fail for no
# fault, at 48 about one run in 200,000.
BURST = 48


def burst_spread(server: RunningServer, credential, workers: int) -> dict[int | None, int]:
    """Opens ``BURST`` connections at once (every connect before any request), then reads the
    core endpoint through each; how many each server process holds."""
    endpoint = Endpoint(server.base_url, server.process.pid, workers=workers)
    # Every worker has answered once (so it listens) before the burst.
    for connection in spread_connections(
        [endpoint], credential.access, credential.secret,
        project=credential.project_id, per_process=1,
    ):  # fmt: skip
        connection.close()
    burst = [
        Connection(endpoint, credential.access, credential.secret, credential.project_id)
        for _ in range(BURST)
    ]
    try:
        for connection in burst:
            status, _, body = connection.core()
            assert status == 200, body
            connection.locate()
        return dict(Counter(connection.pid for connection in burst))
    finally:
        for connection in burst:
            connection.close()


def workers_of(server: RunningServer) -> set[int]:
    return set(process_tree(server.process.pid)) - {server.process.pid}


def listening_sockets(port: int) -> int:
    """How many sockets listen on ``port`` (IPv4): one per worker that has started."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(int(f[1].split(":")[1], 16) == port and f[3] == "0A" for f in map(str.split, lines))


def test_a_burst_of_connections_reaches_every_worker(settings, db, credential, tmp_path):
    """With one socket shared by the workers, the worker that woke first accepted the whole
    burst (in a measured run all 16 of wrk's connections went to one of 4 workers)."""
    with start_server(settings, tmp_path / "workers.log", workers=4) as server:
        held = burst_spread(server, credential, workers=4)
        # Each worker listens on a socket of its own. (A busy machine can wake several workers
        # on a shared socket, so the spread alone does not always tell the two apart.)
        listening = listening_sockets(int(server.base_url.rsplit(":", 1)[1]))
    assert None not in held, held
    assert len(held) == 4, held
    assert listening == 4


def test_a_killed_worker_is_replaced_and_the_port_keeps_answering(
    settings, db, credential, tmp_path
):
    with start_server(settings, tmp_path / "workers.log", workers=2) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        children = workers_of(server)
        victim = max(pid for pid in burst_spread(server, credential, workers=2) if pid)
        os.kill(victim, signal.SIGKILL)
        # Once the kernel has closed its socket (connections that reached it before are reset:
        # the trade-off of a socket per worker; the socket outlives the process's descriptor
        # table while its other threads exit), the survivor answers every new connection
        # while the supervisor starts a new worker.
        deadline = time.monotonic() + 10
        while listening_sockets(port) > 1:
            assert time.monotonic() < deadline, "the killed worker's socket is still open"
            time.sleep(0.01)
        for _ in range(20):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", f"/v2/{credential.project_id}/images/tags")
            assert connection.getresponse().status == 401  # unsigned: an answer, not a reset
            connection.close()
        deadline = time.monotonic() + 60
        while victim in workers_of(server) or len(workers_of(server)) < len(children):
            assert time.monotonic() < deadline, "the killed worker was not replaced"
            time.sleep(0.2)
        # The replacement listens on the port too: a burst reaches both workers.
        held = burst_spread(server, credential, workers=2)
    assert len(held) == 2, held
    assert victim not in held


def test_several_workers_on_port_zero_share_the_port_the_log_names(
    settings, db, credential, tmp_path
):
    """``--port 0``: the kernel picks a free port once, for every worker, and the start-up line
    names it (it used to say port 0, so nobody could tell where the service was)."""
    log_path = tmp_path / "port0.log"
    cmd = [
        sys.executable, "-m", "imstags", "serve", "--host", "127.0.0.1", "--port", "0",
        "--workers", "2", "--log-level", "info", "--log-format", "text",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, env=server_environment(settings), stdout=log, stderr=log)
    server = RunningServer("", process, log_path)
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r"serving on http://127\.0\.0\.1:(\d+)", server.log())):
            assert process.poll() is None, server.log()
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        port = int(found.group(1))
        assert port != 0, server.log()
        server.base_url = f"http://127.0.0.1:{port}"
        wait_until_serving(server, 60)
        held = burst_spread(server, credential, workers=2)
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert len(held) == 2, held
