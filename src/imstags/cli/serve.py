"""``imstags serve``."""

from __future__ import annotations

import logging
import os
from typing import Any

import click

from imstags.cli.common import Context, open_database, pass_context, redact


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
    import uvicorn

    settings = ctx.settings(host=host, port=port, workers=workers, log_level=log_level)
    logging.basicConfig(level=settings.log_level.upper())
    open_database(settings).dispose()
    click.echo(
        f"imstags serving on http://{settings.host}:{settings.port} "
        f"(database: {redact(settings.resolved_database_url)}, workers: {settings.workers})",
        err=True,
    )
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": False,
    }
    if settings.workers > 1:
        # Workers are fresh processes: hand them the resolved settings through the environment.
        for name, value in settings.model_dump(mode="json").items():
            if value is not None:
                os.environ[f"IMSTAGS_{name.upper()}"] = str(value)
        uvicorn.run(
            "imstags.api.app:create_app_from_environment",
            factory=True,
            workers=settings.workers,
            **common,
        )
    else:
        from imstags.api.app import create_app

        uvicorn.run(create_app(settings), **common)
