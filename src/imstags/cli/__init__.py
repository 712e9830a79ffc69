"""The ``imstags`` command.

Every subcommand takes the global ``--database`` (else ``IMSTAGS_DATABASE_URL``, else an SQLite
file in the data directory) and ``--data-dir``, before or after the subcommand's name, and
builds one :class:`~imstags.settings.Settings` from flags, environment and defaults. Each
command group lives in a module of its own and is registered here.
"""

from __future__ import annotations

from pathlib import Path

import click

from imstags.cli.common import DATA_DIR_HELP, DATABASE_HELP, Context, accept_global_options
from imstags.cli.credentials import credentials
from imstags.cli.database import db
from imstags.cli.images import images
from imstags.cli.secrets import secrets
from imstags.cli.seed import seed
from imstags.cli.serve import serve
from imstags.cli.tags import tags
from imstags.cli.users import users


@click.group()
@click.option("--database", "database_url", help=DATABASE_HELP)
@click.option("--data-dir", type=click.Path(path_type=Path), help=DATA_DIR_HELP)
@click.version_option(package_name="imstags")
@click.pass_context
def main(ctx: click.Context, database_url: str | None, data_dir: Path | None) -> None:
    """imstags: the IMS image-tag API and its image catalog."""
    ctx.obj = Context({"database_url": database_url, "data_dir": data_dir})


main.add_command(serve)
main.add_command(db)
main.add_command(credentials)
main.add_command(images)
main.add_command(users)
main.add_command(secrets)
main.add_command(tags)
main.add_command(seed)
accept_global_options(main)
