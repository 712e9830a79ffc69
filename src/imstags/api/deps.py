"""FastAPI dependencies that hand a handler its service (or a setting) from the app's state.

Each is ``async`` although it awaits nothing: FastAPI runs a plain ``def`` dependency in the
thread pool, a hop that costs more than most handlers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from imstags.api.links import public_base_url
from imstags.services.faults import FaultBook
from imstags.services.health import HealthService
from imstags.services.identity import IdentityService
from imstags.services.image_data import ImageDataService
from imstags.services.images import ImageService
from imstags.services.state import StateService
from imstags.services.tags import TagService
from imstags.settings import Settings


async def tag_service(request: Request) -> TagService:
    service: TagService = request.app.state.services.tags
    return service


async def image_service(request: Request) -> ImageService:
    service: ImageService = request.app.state.services.images
    return service


async def image_data_service(request: Request) -> ImageDataService:
    service: ImageDataService = request.app.state.services.image_data
    return service


async def identity_service(request: Request) -> IdentityService:
    service: IdentityService = request.app.state.services.identity
    return service


async def health_service(request: Request) -> HealthService:
    service: HealthService = request.app.state.services.health
    return service


async def state_service(request: Request) -> StateService:
    service: StateService = request.app.state.services.state
    return service


async def fault_book(request: Request) -> FaultBook:
    book: FaultBook = request.app.state.services.faults
    return book


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.services.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def base_url(request: Request, settings: SettingsDep) -> str:
    """The absolute URL of this server's root, as clients are to use it."""
    return public_base_url(request, settings)


TagsDep = Annotated[TagService, Depends(tag_service)]
ImagesDep = Annotated[ImageService, Depends(image_service)]
ImageDataDep = Annotated[ImageDataService, Depends(image_data_service)]
IdentityDep = Annotated[IdentityService, Depends(identity_service)]
HealthDep = Annotated[HealthService, Depends(health_service)]
BaseUrlDep = Annotated[str, Depends(base_url)]
StateDep = Annotated[StateService, Depends(state_service)]
FaultsDep = Annotated[FaultBook, Depends(fault_book)]
