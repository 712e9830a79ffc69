"""Small FastAPI dependencies shared by the routers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from imstags.services.tags import TagService

if TYPE_CHECKING:
    from imstags.services.container import Services


async def get_services(request: Request) -> Services:
    """Async although it awaits nothing: FastAPI runs a plain ``def`` dependency in the thread
    pool, a hop that costs more than most handlers."""
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated["Services", Depends(get_services)]


async def tag_service(request: Request) -> TagService:
    """The tag family's service (async for the same reason as :func:`get_services`)."""
    tags: TagService = request.app.state.services.tags
    return tags


TagsDep = Annotated[TagService, Depends(tag_service)]
