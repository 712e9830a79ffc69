"""``imstags seed FILE`` (and ``imstags serve --seed FILE``): known state from one document."""

from __future__ import annotations

from pathlib import Path

import click

from imstags.cli.common import Context, pass_context
from imstags.errors import ImsError
from imstags.services.admin import admin_services
from imstags.services.documents import read_document
from imstags.settings import Settings


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_context
def seed(ctx: Context, file: Path) -> None:
    """Load projects, credentials, users, images and tags from FILE (JSON or YAML).

    The whole file is one transaction: if anything in it is refused, nothing is written.
    The format is the one the admin API's export writes (see the README).
    """
    seed_file(ctx.settings(), file)


def seed_file(settings: Settings, file: Path) -> None:
    try:
        document = read_document(file)
        with admin_services(settings) as services:
            report = services.state.seed(document)
    except ImsError as exc:
        raise click.ClickException(f"{file}: {exc.message}") from None
    click.echo(
        f"seeded {report.projects} projects: {report.credentials} credentials, "
        f"{report.users} users, {report.images} images with {report.tags} tags",
        err=True,
    )
