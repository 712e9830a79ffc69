"""``imstags db ...``: the schema, backups, and the consistency of the tag aggregate."""

from __future__ import annotations

from pathlib import Path

import click

from imstags.cli.common import Context, pass_context, services_of
from imstags.services.admin import upgrade_schema
from imstags.services.backup import BackupNeedsPgDump, backup_database

MAX_SHOWN = 100


@click.group()
def db() -> None:
    """Database schema and consistency."""


@db.command("upgrade")
@pass_context
def upgrade(ctx: Context) -> None:
    """Apply all pending migrations."""
    done = upgrade_schema(ctx.settings())
    applied = ", ".join(done.applied) or "none pending"
    click.echo(f"database at the newest schema: {done.shown_url} (applied: {applied})")
    if done.rebuilt:
        click.echo(
            f"rebuilt the indexes an interrupted import left missing: {', '.join(done.rebuilt)}"
        )


@db.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_context
def backup(ctx: Context, file: Path) -> None:
    """Write a consistent copy of the live SQLite database to FILE (PostgreSQL: says which
    pg_dump to run). Restore: put FILE as imstags.db in an empty data directory (or point
    IMSTAGS_DATABASE_URL at it) with the same secret key; see docs/deploy.md."""
    try:
        done = backup_database(ctx.settings(), file)
    except BackupNeedsPgDump as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"backed up {done.size} bytes to {done.target}")
    click.echo(
        "keep the secret-encryption key with it (IMSTAGS_SECRET_KEY or secret.key in the data "
        "directory): the stored AK/SK secrets cannot be read without it",
        err=True,
    )


@db.command("check")
@click.option("--project-id", help="Only this project (default: every project).")
@click.option("--repair", is_flag=True, help="Rewrite every wrong count with its recount.")
@pass_context
def check(ctx: Context, project_id: str | None, repair: bool) -> None:
    """Compare the tag aggregate behind GET /v2/{project_id}/images/tags with a recount.

    Prints every (project, key, value) whose stored count differs and exits with status 1;
    prints one line and exits 0 when they all agree. Safe on a live database. With --repair
    the wrong counts are rewritten in one transaction (tag writes wait for it), the projects'
    cached summaries are rebuilt, and the exit status is 0.
    """
    with services_of(ctx) as services:
        if repair:
            report = services.consistency.repair(project_id)
        else:
            report = services.consistency.check(project_id)
    scope = f"{report.pairs} (key, value) pairs in {report.projects} projects"
    if report.consistent:
        click.echo(f"consistent: {scope}, every stored count equals its recount")
        return
    for row in report.differences[:MAX_SHOWN]:
        stored = "no row" if row.stored is None else row.stored
        click.echo(
            f"project {row.project_id}: {row.key}={row.value}: "
            f"stored {stored}, recounted {row.recounted or 0}"
        )
    if len(report.differences) > MAX_SHOWN:
        click.echo(f"... and {len(report.differences) - MAX_SHOWN} more")
    if report.repaired:
        click.echo(f"repaired: {len(report.differences)} counts rewritten ({scope})")
        return
    raise click.ClickException(
        f"{len(report.differences)} stored counts differ from the recount ({scope}); "
        "`imstags db check --repair` rewrites them"
    )
