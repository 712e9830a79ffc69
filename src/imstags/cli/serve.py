"""``imstags serve``."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from imstags.cli.common import Context, pass_context
from imstags.cli.seed import seed_file
from imstags.services.admin import upgrade_schema
from imstags.settings import Settings

APP_FACTORY = "imstags.api.app:create_app_from_environment"


@click.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 9292).")
@click.option("--workers", type=int, help="Worker processes (default 1).")
@click.option("--log-level", help="debug, info, warning or error.")
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
    seed_path: Path | None,
) -> None:
    """Serve every API on one port, after applying pending migrations."""
    settings = ctx.settings(host=host, port=port, workers=workers, log_level=log_level)
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
    uvicorn.run(
        factory,
        factory=True,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
    )
