"""How the service's log looks: JSON lines (python-json-logger) or readable text, one level.

Both ``imstags serve`` and each ``--workers`` process call :func:`configure_logging`; the
request line (``imstags.access``) carries its facts as record attributes, which the JSON
formatter writes as fields and the text formatter appends as ``key=value``. Alembic's own
INFO lines (its plugin list on every start) are kept below the chosen level: the start-up says
which migrations ran in one line of its own.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

# The facts a request line (and an error's line) carries beyond its message.
REQUEST_FIELDS = (
    "request_id",
    "project_id",
    "method",
    "route",
    "status",
    "latency_ms",
    "client",
    "credentials",
)
QUIET_LOGGERS = ("alembic", "uvicorn.error", "uvicorn.access")


class TextFormatter(logging.Formatter):
    """``time LEVEL logger message key=value ...`` for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [
            f"{name}={getattr(record, name)}"
            for name in REQUEST_FIELDS
            if name not in ("method", "route", "status", "latency_ms")
            and getattr(record, name, None) is not None
        ]
        if not fields:
            return line
        head, newline, trace = line.partition("\n")
        return f"{head} {' '.join(fields)}{newline}{trace}"


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        "{asctime}{levelname}{name}{message}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


def resolve_format(log_format: str | None, stream: TextIO) -> str:
    """The configured format, else text on a terminal and JSON otherwise."""
    if log_format:
        return log_format
    return "text" if stream.isatty() else "json"


def configure_logging(level: str, log_format: str | None, stream: TextIO | None = None) -> None:
    """Route every logger through one handler on ``stream`` (stderr) at ``level``."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    chosen = resolve_format(log_format, stream)
    handler.setFormatter(json_formatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    numeric = logging.getLevelName(level.upper())
    root.setLevel(numeric)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    for name in ("uvicorn", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
