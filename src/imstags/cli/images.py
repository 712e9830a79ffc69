"""``imstags images ...``: the image catalog from the command line."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import click

from imstags.cli.common import Context, pass_context, services_of
from imstags.cli.listing import FORMAT_OPTION, emit, wants_table


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            count += block.count(b"\n")
    return count


@click.group()
def images() -> None:
    """Images and their tags."""


@images.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--project-id", help="Project of lines that name none.")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=20_000,
    show_default=True,
    help="Lines per transaction.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@pass_context
def import_(ctx: Context, file: Path, project_id: str | None, batch_size: int, quiet: bool) -> None:
    """Import images with their tags from FILE, JSON lines ('-' reads standard input).

    One image a line: {"project_id": "...", "id": "<uuid>", "name": "...", "tags": {"k": "v"}}
    (tags may also be a list of native strings "k=v" / "k"; id, name and tags are optional).
    Tags pass the same rules as the API. A batch with a bad line is not written, its bad lines
    are listed, and the import stops there; earlier batches stay imported.
    """
    from tqdm import tqdm

    stdin = str(file) == "-"
    total = None if stdin else _count_lines(file)
    handle = sys.stdin.buffer if stdin else file.open("rb")
    try:
        with (
            services_of(ctx) as services,
            tqdm(total=total, unit=" lines", unit_scale=True, disable=quiet) as bar,
        ):
            report = services.imports.import_lines(
                handle,
                default_project_id=project_id,
                batch_size=batch_size,
                on_progress=bar.update,
                on_stage=None if quiet else partial(_stage, bar),
            )
    finally:
        if not stdin:
            handle.close()
    click.echo(
        f"imported {report.images} images with {report.tags} tags "
        f"(lines 1-{report.lines_committed} committed)",
        err=True,
    )
    if not report.ok:
        for error in report.errors[:100]:
            click.echo(f"error: {error}", err=True)
        if len(report.errors) > 100:
            click.echo(f"... and {len(report.errors) - 100} more", err=True)
        raise click.ClickException(
            f"stopped: the batch after line {report.lines_committed} has bad lines; "
            "nothing of it was written"
        )


def _stage(bar: Any, message: str) -> None:
    """A step of the import that the progress bar does not show (building indexes takes
    minutes at millions of images), with the time it began."""
    bar.write(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr)


IMAGE_COLUMNS = (
    ("project_id", 32),
    ("id", 36),
    ("name", 24),
    ("status", 8),
    ("visibility", 10),
    ("created_at", 25),
    ("tags", 40),
)


@images.command("list")
@click.option("--project-id", help="Only this project (default: every project).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many images.")
@FORMAT_OPTION
@pass_context
def list_(
    ctx: Context, project_id: str | None, limit: int | None, output_format: str | None
) -> None:
    """Images with their tags, in (project, id) order."""
    with services_of(ctx) as services:
        emit(
            (asdict(line) for line in services.views.images(project_id, limit)),
            IMAGE_COLUMNS,
            table=wants_table(output_format),
        )
