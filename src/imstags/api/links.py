"""Absolute URLs this server hands out (version documents, the Keystone service catalog)."""

from __future__ import annotations

from fastapi import Request

from imstags.settings import Settings


def public_base_url(request: Request, settings: Settings) -> str:
    """``settings.public_url`` when set (behind a proxy), else the URL the client used."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")
