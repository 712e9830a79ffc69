"""Documents that users write by hand (seed files, fault rule files): JSON or YAML."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from imstags.errors import BadRequest


def parse_document(text: str | bytes, *, name: str = "the document") -> object:
    """JSON when it parses as JSON, else YAML (a superset for what these documents hold)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BadRequest(f"{name} is neither JSON nor YAML: {exc}") from None


def read_document(path: Path) -> object:
    return parse_document(path.read_bytes(), name=str(path))
