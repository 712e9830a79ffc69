"""Read-your-writes across server processes, many times over: the consistency check of
``benchmarks/processes.py`` (issue 16, item 5) with two workers behind one port and with two
separate instances. Each round writes a new tag value through one connection and reads the
core endpoint at once through every other, on connections spread over the processes (the
check finds out which process holds each); a stale body or an unchanged ETag is a violation.

``test_workers.py`` walks through each kind of write once; this repeats one kind many times,
over more connections, so that a cache that is only sometimes stale shows up too.
"""

from __future__ import annotations

from contextlib import ExitStack

from benchmarks.processes import Endpoint, consistency_check

from tests.support.server import start_server

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
