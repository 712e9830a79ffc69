"""Start ``imstags serve`` as a real process on a free port, the way users run it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from imstags.settings import Settings


@dataclass
class RunningServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "IMSTAGS_DATABASE_URL": settings.resolved_database_url,
            "IMSTAGS_DATA_DIR": str(settings.data_dir),
            "IMSTAGS_SECRET_KEY": settings.secret_key or "",
        }
    )
    return env


@contextmanager
def start_server(
    settings: Settings,
    log_path: Path,
    *,
    workers: int = 1,
    extra_args: tuple[str, ...] = (),
    startup_timeout: float | None = None,
) -> Iterator[RunningServer]:
    """The server, once it answers. Each worker process imports the whole app, so the default
    wait grows with the number of workers (the machine may be busy with other tests)."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "imstags", "serve",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", *extra_args,
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, env=server_environment(settings), stdout=log, stderr=log)
    running = RunningServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_until_serving(running, startup_timeout or 30.0 * max(1, workers))
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_serving(running: RunningServer, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise RuntimeError(f"imstags exited early:\n{running.log()}")
        try:
            httpx.get(running.base_url + "/v2/x/images/tags", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"imstags did not start within {timeout}s:\n{running.log()}")
