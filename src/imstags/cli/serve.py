"""``imstags serve``."""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any, SupportsIndex

import click

from imstags import __version__
from imstags.api.http_limits import protocol
from imstags.cli.common import Context, pass_context
from imstags.cli.seed import seed_file
from imstags.logging_config import configure_logging
from imstags.services.admin import upgrade_schema
from imstags.services.metrics import MULTIPROCESS_DIR_VARIABLE
from imstags.settings import Settings

APP_FACTORY = "imstags.api.app:create_app_from_environment"
log = logging.getLogger("imstags.serve")


@click.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 9292).")
@click.option("--workers", type=int, help="Worker processes (default 1).")
@click.option("--log-level", help="debug, info, warning or error (default info).")
@click.option(
    "--log-format",
    type=click.Choice(["json", "text"]),
    help="Log lines as JSON or text (default: text on a terminal, else JSON).",
)
@click.option(
    "--metrics-access",
    type=click.Choice(["off", "loopback", "open"]),
    help="Who may read GET /metrics (default loopback).",
)
@click.option(
    "--seed", "seed_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Load this JSON or YAML state document before serving (as `imstags seed`).",
)  # fmt: skip
@pass_context
def serve(
    ctx: Context,
    host: str | None,
    port: int | None,
    workers: int | None,
    log_level: str | None,
    log_format: str | None,
    metrics_access: str | None,
    seed_path: Path | None,
) -> None:
    """Serve every API on one port, after applying pending migrations."""
    settings = ctx.settings(
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        log_format=log_format,
        metrics_access=metrics_access,
    )
    if seed_path is not None:
        seed_file(settings, seed_path)
    run_server(settings, APP_FACTORY)


def run_server(settings: Settings, factory: str) -> None:
    """Migrate, then serve the app that ``factory`` ("module:function") builds.

    Every process builds its app from ``IMSTAGS_*`` variables set here from the resolved
    settings, one worker or many alike. The benchmark's floor server runs through here too, so
    that it and ``imstags serve`` differ only in the app.
    """
    import uvicorn

    configure_logging(settings.log_level, settings.log_format)
    log.info("imstags %s", __version__)
    done = upgrade_schema(settings)
    log.info("database: %s", done.shown_url)
    log.info("migrations applied: %s", ", ".join(done.applied) or "none pending")
    if done.rebuilt:
        log.warning("rebuilt indexes an interrupted import left missing: %s", done.rebuilt)
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            os.environ[f"IMSTAGS_{name.upper()}"] = str(value)
    max_connections = connection_cap(settings.max_connections)
    options: dict[str, Any] = {
        "factory": True,
        "workers": settings.workers,
        "host": settings.host,
        "port": settings.port,
        "log_config": None,  # our handler and format (configure_logging), in every process
        "access_log": False,  # the request line is ours (imstags.access)
        "http": protocol(
            "auto", head_timeout=settings.head_timeout_seconds, max_connections=max_connections
        ),
        "timeout_keep_alive": settings.keep_alive_timeout_seconds,
        # X-Forwarded-For names the client only when a listed proxy sent it (default: none).
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": settings.forwarded_allow_ips or None,
    }
    # With several workers on Linux: the port reserved here, a listening socket per worker.
    listener = None
    if settings.workers > 1 and reuse_port_available():
        listener = reserve_port(settings.host, settings.port)
    metrics_dir = None
    try:
        metrics_dir = _multiprocess_metrics_dir(settings)
        port = listener.getsockname()[1] if listener is not None else settings.port
        sockets = ""
        if settings.workers > 1:
            sockets = ", a listening socket each" if listener else ", one shared socket"
        log.info(
            "serving on http://%s:%s (workers: %s%s, metrics: %s)",
            f"[{settings.host}]" if ":" in settings.host else settings.host,
            port,
            settings.workers,
            sockets,
            settings.metrics_access,
        )
        if listener is None:
            uvicorn.run(factory, **options)
        else:
            _supervise(uvicorn.Config(factory, **options), listener)
    finally:
        if listener is not None:
            listener.close()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


# --- one listening socket per worker ----------------------------------------------------------
#
# With one socket shared by K workers, every worker's event loop waits on it, and the loop that
# wakes first accepts in a loop until the queue is empty: a burst of connections (a client's
# pool, wrk's 16) lands on one worker, and K workers serve like one (issue 16, item 5). With
# SO_REUSEPORT each worker listens on a socket of its own, bound to the same address, and the
# kernel hands each new connection to one of them by a hash of its addresses and ports. The
# trade-offs: the spread is by hash, not by load (a busy worker gets its share of new
# connections all the same; over many connections it evens out), and the connections waiting
# in a worker's accept queue when it dies are reset, not passed to another worker (with the
# shared socket they stay queued for the others). Linux only: elsewhere SO_REUSEPORT either is
# missing or does not spread connections, and the workers share one socket as before.


def reuse_port_available() -> bool:
    """Whether workers can each listen on a socket of their own (Linux's SO_REUSEPORT)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


class PerWorkerListener(socket.socket):
    """The supervisor's socket: bound with SO_REUSEPORT, which holds the address (and, for
    port 0, fixes the port the kernel picked), and never listened on, so the kernel gives it no
    connection. uvicorn's supervisor hands its sockets to each worker it starts (at start-up,
    on a restart after a crash, on SIGHUP or SIGTTIN) by pickling them into the new process;
    this socket pickles as its address, and unpickling in the worker opens that worker's own
    socket on it (:func:`worker_socket`), which uvicorn then listens on as it would on a shared
    one. So uvicorn's supervisor (restarts, signals, health checks) is used unchanged."""

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        return worker_socket, (int(self.family), self.getsockname())


def _reuse_port_options(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: past TIME_WAIT
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)


def worker_socket(family: int, address: tuple[Any, ...]) -> socket.socket:
    """In a worker: a socket of its own with SO_REUSEPORT, bound to the supervisor's address
    (the same port, resolved host and IPv6 scope). It joins the port's group of listeners
    when uvicorn listens on it, after the app has started, so no connection waits on a worker
    that cannot answer yet. A failed bind ends the worker as a failed start-up, which stops
    the supervisor rather than restarting the worker for ever."""
    from uvicorn.config import STARTUP_FAILURE

    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        _reuse_port_options(sock)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        log.error("worker %s cannot listen on %s: %s", os.getpid(), address, exc)
        sys.exit(STARTUP_FAILURE)
    return sock


def reserve_port(host: str, port: int) -> PerWorkerListener | None:
    """The supervisor's socket on ``host``:``port`` (IPv6 if the host has a colon, as in
    uvicorn), or None if this system refuses SO_REUSEPORT (then the workers share one socket).

    The address is first bound without SO_REUSEPORT and released: that fails if anything
    listens on it already, another ``imstags serve`` with its own per-worker sockets
    included, which SO_REUSEPORT alone would let this one join (same user) and silently split
    the traffic with. It also resolves port 0 to the port the workers will share."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
            address = probe.getsockname()
            probe.listen(1)  # a listener on the address, as the workers will be, must fit
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from exc
    listener = PerWorkerListener(family, socket.SOCK_STREAM)
    try:
        _reuse_port_options(listener)
    except OSError as exc:
        listener.close()
        log.warning("SO_REUSEPORT refused (%s): the workers share one listening socket", exc)
        return None
    try:
        listener.bind(address)
    except OSError as exc:
        listener.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from exc
    return listener


def _supervise(config: Any, listener: PerWorkerListener) -> None:
    """What ``uvicorn.run`` does for ``workers > 1``, with ``listener`` in place of the shared
    socket it would bind: uvicorn's supervisor starts the workers, restarts any that dies,
    and handles SIGINT/SIGTERM (stop), SIGHUP (replace every worker), SIGTTIN/SIGTTOU."""
    from uvicorn.supervisors.multiprocess import Multiprocess

    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run: a ^C ends it quietly
        Multiprocess(config, sockets=[listener]).run()


def _multiprocess_metrics_dir(settings: Settings) -> str | None:
    """With several workers, a fresh directory where each writes its metrics (read back and
    summed by whichever worker answers a scrape: prometheus-client's multiprocess mode). The
    variable reaches the workers through the environment, before they import the client."""
    if settings.workers <= 1 or settings.metrics_access == "off":
        return None
    path = tempfile.mkdtemp(prefix="imstags-metrics-")
    os.environ[MULTIPROCESS_DIR_VARIABLE] = path
    return path


# Descriptors the process needs besides client connections: database connections (pool,
# overflow, tag writers), the log, the listening socket, imported files.
RESERVED_DESCRIPTORS = 100


def connection_cap(wanted: int) -> int:
    """``max_connections``, lowered to what the descriptor limit leaves room for: past it,
    accept() fails and the server stops answering everyone (issue 11, item 16)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or wanted + RESERVED_DESCRIPTORS <= soft:
        return wanted
    fitted = max(1, soft - RESERVED_DESCRIPTORS)
    click.echo(
        f"max_connections lowered from {wanted} to {fitted} (descriptor limit {soft})", err=True
    )
    return fitted
