"""``imstags tags list``: the tag aggregate behind GET /v2/{project_id}/images/tags."""

from __future__ import annotations

from dataclasses import asdict

import click

from imstags.cli.common import Context, pass_context, services_of
from imstags.cli.listing import FORMAT_OPTION, emit, wants_table

COLUMNS = (("project_id", 32), ("key", 30), ("value", 30), ("images", 10))


@click.group()
def tags() -> None:
    """The tags of the catalog."""


@tags.command("list")
@click.option("--project-id", help="Only this project (default: every project).")
@FORMAT_OPTION
@pass_context
def list_(ctx: Context, project_id: str | None, output_format: str | None) -> None:
    """Every (key, value) with the number of images that carry it, per project."""
    with services_of(ctx) as services:
        emit(
            (asdict(line) for line in services.views.tag_counts(project_id)),
            COLUMNS,
            table=wants_table(output_format),
        )
