"""What the request middleware's metrics and log line cost per request, in process.

Calls a trivial ASGI app (one 200 with a small body) through ``RequestIdMiddleware`` without
an observer (``metrics_access=off``), with the Prometheus observer (the default), and with the
observer in multiprocess mode (``serve --workers K``), the log level at warning as in the
benchmarks; prints microseconds per request, the median of several rounds. Bounded: a fixed
number of calls per round. The end-to-end figure is benchmarks/run.py run twice, with
``IMSTAGS_METRICS_ACCESS=off`` and without (docs/performance.md).

    .venv/bin/python -m benchmarks.metrics_overhead [--calls 50000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time

CALLS = 50_000


def measure(observer_on: bool, calls: int, rounds: int) -> float:
    import logging

    from starlette.types import Message, Receive, Scope, Send

    from imstags.api.middleware import RequestIdMiddleware
    from imstags.services import metrics

    logging.getLogger().setLevel(logging.WARNING)

    class Route:
        path = "/v2/{project_id}/images/tags"

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = Route
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b'{"tags":[]}'})

    wrapped = RequestIdMiddleware(app, observer=metrics.observe_request if observer_on else None)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(_message: Message) -> None:
        return None

    async def run() -> float:
        scope_base = {"type": "http", "method": "GET", "path": "/v2/p/images/tags", "headers": []}
        started = time.perf_counter()
        for _ in range(calls):
            await wrapped(dict(scope_base), receive, send)
        return (time.perf_counter() - started) / calls * 1e6

    return statistics.median(asyncio.run(run()) for _ in range(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=CALLS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mode", choices=["off", "on"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:  # one measurement, in a fresh process (the client's mode is fixed at import)
        print(f"{measure(args.mode == 'on', args.calls, args.rounds):.2f}")
        return
    figures = {}
    with tempfile.TemporaryDirectory() as multiprocess_dir:
        for label, mode, env in (
            ("metrics off", "off", {}),
            ("metrics on, one process", "on", {}),
            ("metrics on, multiprocess", "on", {"PROMETHEUS_MULTIPROC_DIR": multiprocess_dir}),
        ):
            command = [sys.executable, "-m", "benchmarks.metrics_overhead", "--mode", mode]
            command += ["--calls", str(args.calls), "--rounds", str(args.rounds)]
            output = subprocess.run(
                command, env={**os.environ, **env}, capture_output=True, text=True, check=True
            )
            figures[label] = float(output.stdout)
    base = figures["metrics off"]
    for label, micros in figures.items():
        print(f"{label:28} {micros:6.2f} µs/request  (+{micros - base:.2f})")


if __name__ == "__main__":
    main()
