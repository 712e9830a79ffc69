"""``imstags serve``."""

from __future__ import annotations

import logging
import os
import resource

import click

from imstags.api.http_limits import protocol
from imstags.cli.common import Context, pass_context
from imstags.services.admin import upgrade_schema
from imstags.settings import Settings

APP_FACTORY = "imstags.api.app:create_app_from_environment"


@click.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 9292).")
@click.option("--workers", type=int, help="Worker processes (default 1).")
@click.option("--log-level", help="debug, info, warning or error.")
@pass_context
def serve(
    ctx: Context, host: str | None, port: int | None, workers: int | None, log_level: str | None
) -> None:
    """Serve every API on one port, after applying pending migrations."""
    settings = ctx.settings(host=host, port=port, workers=workers, log_level=log_level)
    run_server(settings, APP_FACTORY)


def run_server(settings: Settings, factory: str) -> None:
    """Migrate, then serve the app that ``factory`` ("module:function") builds.

    Every process builds its app from ``IMSTAGS_*`` variables set here from the resolved
    settings, one worker or many alike. The benchmark's floor server runs through here too, so
    that it and ``imstags serve`` differ only in the app.
    """
    import uvicorn

    logging.basicConfig(level=settings.log_level.upper())
    shown_url = upgrade_schema(settings)
    click.echo(
        f"imstags serving on http://{settings.host}:{settings.port} "
        f"(database: {shown_url}, workers: {settings.workers})",
        err=True,
    )
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            os.environ[f"IMSTAGS_{name.upper()}"] = str(value)
    max_connections = connection_cap(settings.max_connections)
    uvicorn.run(
        factory,
        factory=True,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        http=protocol(
            "auto", head_timeout=settings.head_timeout_seconds, max_connections=max_connections
        ),
        timeout_keep_alive=settings.keep_alive_timeout_seconds,
    )


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
