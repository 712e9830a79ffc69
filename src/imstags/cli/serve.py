"""``imstags serve``."""

from __future__ import annotations

import logging
import os
import resource
import shutil
import tempfile
from pathlib import Path

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
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            os.environ[f"IMSTAGS_{name.upper()}"] = str(value)
    metrics_dir = _multiprocess_metrics_dir(settings)
    max_connections = connection_cap(settings.max_connections)
    log.info(
        "serving on http://%s:%s (workers: %s, metrics: %s)",
        settings.host,
        settings.port,
        settings.workers,
        settings.metrics_access,
    )
    try:
        uvicorn.run(
            factory,
            factory=True,
            workers=settings.workers,
            host=settings.host,
            port=settings.port,
            log_config=None,  # our handler and format (configure_logging), in every process
            access_log=False,  # the request line is ours (imstags.access)
            http=protocol(
                "auto", head_timeout=settings.head_timeout_seconds, max_connections=max_connections
            ),
            timeout_keep_alive=settings.keep_alive_timeout_seconds,
            # X-Forwarded-For names the client only when a listed proxy sent it (default: none).
            proxy_headers=bool(settings.forwarded_allow_ips),
            forwarded_allow_ips=settings.forwarded_allow_ips or None,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


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
