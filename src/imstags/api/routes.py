"""The one place where every API family's router is registered."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from imstags.api import health
from imstags.api.ims import tags as ims_tags
from imstags.api.openstack import images as openstack_images

if TYPE_CHECKING:
    from imstags.api.app import Services


def include_routers(app: FastAPI, services: Services) -> None:
    # IMS extension APIs. The tag routes come before any /v2/{project_id}/images/{image_id}
    # route so that "/v2/P/images/tags" is never read as an image id "tags".
    app.include_router(ims_tags.router)
    # Native OpenStack image API.
    app.include_router(openstack_images.router)
    # Liveness and readiness probes (no credentials).
    app.include_router(health.router)
