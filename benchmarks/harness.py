"""What the benchmarks share: wrk, signing, workload databases and the server under test.

Used by ``run.py`` and ``core_scaling.py``; see ``run.py`` for how to run them.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.fernet import Fernet
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PROJECT = "bench0000000000000000000000000000"
SEED = 1
PYTHON = sys.executable


# --- tools ------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: installing the Debian package", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, capture_output=True)
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "update"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk") or "wrk"


def server_env(workdir: Path) -> dict[str, str]:
    """Environment for imstags commands of a benchmark: its data directory and a key kept in
    ``workdir`` so that loaded databases stay usable across runs."""
    workdir.mkdir(parents=True, exist_ok=True)
    key_file = workdir / "secret.key"
    if not key_file.exists():
        key_file.write_text(Fernet.generate_key().decode())
    return {
        **os.environ,
        "IMSTAGS_DATA_DIR": str(workdir / "data"),
        "IMSTAGS_SECRET_KEY": key_file.read_text(),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def imstags(env: dict[str, str], *args: str, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    return subprocess.run(
        [PYTHON, "-m", "imstags", *args], env=env, check=True, capture_output=True, **kwargs
    )


def signed_headers(method: str, url: str, ak: str, sk: str, body: bytes = b"") -> dict[str, str]:
    """Headers the Huawei Cloud SDK's own signer puts on this request (valid 15 minutes)."""
    parts = urlsplit(url)
    request = SdkRequest(
        method=method,
        schema=parts.scheme,
        host=parts.netloc,
        resource_path=parts.path,
        query_params=[],
        header_params={"Content-Type": "application/json"},
        body=body,
    )
    signed = Signer(BasicCredentials(ak, sk)).sign(request)
    return {k: str(v) for k, v in signed.header_params.items()}


# --- wrk ------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    server_cpu_us_per_request: float

    def as_dict(self) -> dict[str, float]:
        return self.__dict__.copy()


def _found(pattern: str, text_value: str, flags: int = 0) -> re.Match[str]:
    """The match, or an error that shows what wrk printed instead."""
    match = re.search(pattern, text_value, flags)
    if match is None:
        raise RuntimeError(f"no {pattern!r} in wrk's output:\n{text_value}")
    return match


def _ms(text_value: str) -> float:
    number, unit = _found(r"^([\d.]+)(us|ms|s|m)", text_value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(
    wrk: str,
    url: str,
    *,
    connections: int,
    duration: int,
    script: Path | None = None,
    server: Server | None = None,
) -> WrkResult:
    """One wrk run. With ``server``, also the server's CPU time per request, which other
    load on the machine disturbs far less than requests/s."""
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    if script is not None:
        cmd += ["-s", str(script)]
    cpu_before = server.cpu_seconds() if server else 0.0
    out = subprocess.run([*cmd, url], check=True, capture_output=True, text=True).stdout
    cpu = server.cpu_seconds() - cpu_before if server else 0.0
    total = re.search(r"(\d+) requests in", out)
    rps = float(_found(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(_found(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(_found(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        rps,
        p50,
        p99,
        int(non_2xx.group(1)) if non_2xx else 0,
        sum(int(g) for g in errors.groups()) if errors else 0,
        cpu * 1e6 / int(total.group(1)) if server and total and int(total.group(1)) else 0.0,
    )


def median_of(results: list[WrkResult]) -> dict[str, float]:
    """Each figure's median over several runs."""
    return {
        name: statistics.median(getattr(result, name) for result in results)
        for name in WrkResult.__dataclass_fields__
    }


def lua_requests(path: Path, requests: list[tuple[str, str, dict[str, str], bytes]]) -> Path:
    """A wrk script cycling through fixed, pre-signed requests."""

    def lua(value: str | bytes) -> str:
        return json.dumps(value.decode() if isinstance(value, bytes) else value)

    entries = []
    for method, req_path, headers, body in requests:
        table = ", ".join(f"[{lua(k)}] = {lua(v)}" for k, v in headers.items())
        # No body at all for an empty one: wrk.format would add "Content-Length: 0", which the
        # SDK does not send on a GET.
        payload = lua(body) if body else "nil"
        entries.append(f"wrk.format({lua(method)}, {lua(req_path)}, {{{table}}}, {payload})")
    path.write_text(
        "local reqs = {\n  "
        + ",\n  ".join(entries)
        + "\n}\nlocal i = 0\nrequest = function()\n  i = i % #reqs + 1\n  return reqs[i]\nend\n"
    )
    return path


# --- databases and servers -------------------------------------------------------------------


@dataclass
class Target:
    name: str  # "sqlite" or "postgresql"
    url: str


def sqlite_target(workdir: Path, size: int) -> Target:
    return Target("sqlite", f"sqlite:///{workdir / f'w-{size}.db'}")


def postgres_target(server_url: str, size: int) -> Target:
    """A database per size and per checkout: two checkouts benchmarking against one server
    (an old commit beside the new one) would otherwise drop each other's database."""
    url = make_url(server_url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"imstags_bench_{size}_{_CHECKOUT}"
    return Target("postgresql", url.set(database=name).render_as_string(False))


_CHECKOUT = re.sub(r"[^a-z0-9]", "_", Path(__file__).resolve().parent.parent.name.lower())[:20]


def recreate(target: Target, workdir: Path, size: int) -> None:
    if target.name == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(str(workdir / f"w-{size}.db") + suffix).unlink(missing_ok=True)
        return
    url = make_url(target.url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()


def load(
    env: dict[str, str], target: Target, workdir: Path, size: int, fresh: bool
) -> tuple[float, float]:
    """Load W of this size unless a previous run did; returns the seconds the import took,
    wall-clock and CPU (the importer's own, without the database server's)."""
    # Per checkout as the PostgreSQL database is: a workdir shared by two checkouts holds two.
    marker = workdir / f"loaded-{target.name}-{size}-{_CHECKOUT}"
    if marker.exists() and not fresh:
        wall_text, _, cpu_text = marker.read_text().partition(" ")
        return float(wall_text), float(cpu_text or "nan")
    data = workdir / f"w-{size}.jsonl"
    if not data.exists():
        with data.open("wb") as out:
            subprocess.run(
                [PYTHON, "-m", "benchmarks.generate", "--images", str(size),
                 "--seed", str(SEED), "--project-id", PROJECT],
                env=env, stdout=out, check=True,
            )  # fmt: skip
    recreate(target, workdir, size)
    env = {**env, "IMSTAGS_DATABASE_URL": target.url}
    imstags(env, "db", "upgrade")
    started, cpu_before = time.monotonic(), _children_cpu()
    subprocess.run(
        [PYTHON, "-m", "imstags", "images", "import", str(data)], env=env, check=True
    )  # progress bar on the terminal
    seconds, cpu = time.monotonic() - started, _children_cpu() - cpu_before
    marker.write_text(f"{seconds:.1f} {cpu:.1f}")
    return seconds, cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]

    def pids(self) -> list[int]:
        pids = [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        return pids

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server's processes have used so far."""
        total = 0
        for pid in self.pids():
            stat = Path(f"/proc/{pid}/stat")
            if stat.exists():
                fields = stat.read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        """Peak RSS of the server: its own, or the largest of its worker processes."""
        peaks = []
        for pid in self.pids():
            status = Path(f"/proc/{pid}/status")
            if status.exists():
                match = re.search(r"VmHWM:\s+(\d+) kB", status.read_text())
                if match:
                    peaks.append(int(match.group(1)) / 1024)
        return max(peaks, default=0.0)


@contextmanager
def serve(env: dict[str, str], target: Target, workers: int, log: Path) -> Iterator[Server]:
    port = free_port()
    env = {**env, "IMSTAGS_DATABASE_URL": target.url}
    # imstags serve's app and options, plus the floor route (benchmarks/floor.py).
    cmd = [PYTHON, "-m", "benchmarks.floor", "--port", str(port), "--workers", str(workers),
           "--log-level", "warning"]  # fmt: skip
    with log.open("ab") as out:
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=out, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited early; see {log}")
            try:
                httpx.get(f"{server.base_url}/_bench/floor/{PROJECT}", timeout=5)
                break
            except httpx.TransportError:
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


def image_ids(target: Target, count: int) -> list[str]:
    engine = create_engine(target.url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id FROM images WHERE project_id = :p ORDER BY id LIMIT :n"),
            {"p": PROJECT, "n": count},
        )
        ids = [row[0] for row in rows]
    engine.dispose()
    return ids
