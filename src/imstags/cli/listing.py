"""Listings for people and for scripts: a table on a terminal, JSON lines when piped."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence

import click

FORMAT_OPTION = click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    help="table or JSON lines (default: a table on a terminal, JSON lines otherwise).",
)


def wants_table(output_format: str | None) -> bool:
    if output_format is not None:
        return output_format == "table"
    return sys.stdout.isatty()


def emit(
    records: Iterable[Mapping[str, object]],
    columns: Sequence[tuple[str, int]],
    *,
    table: bool,
) -> int:
    """Write each record as it comes (a million rows stream); returns how many. A table's
    columns have fixed widths, so that it can start before the last row is read; longer
    values are cut with an ellipsis."""
    count = 0
    if table:
        click.echo("  ".join(name.upper().ljust(width) for name, width in columns).rstrip())
    for record in records:
        count += 1
        if not table:
            click.echo(json.dumps(record, default=str))
            continue
        cells = []
        for name, width in columns:
            text = _cell(record.get(name))
            cells.append(text if len(text) <= width else text[: width - 1] + "…")
            cells[-1] = cells[-1].ljust(width)
        click.echo("  ".join(cells).rstrip())
    return count


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" if v else str(k) for k, v in value.items())
    return str(value)
