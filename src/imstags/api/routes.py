"""The one place where every API family's router is registered."""

from __future__ import annotations

from fastapi import FastAPI

from imstags.api import admin, console, health
from imstags.api.identity import tokens as identity_tokens
from imstags.api.identity import versions as identity_versions
from imstags.api.ims import cloudimage_tags, tag_queries
from imstags.api.ims import images as ims_images
from imstags.api.ims import tags as ims_tags
from imstags.api.openstack import images as openstack_images
from imstags.api.openstack import schemas as openstack_schemas
from imstags.api.openstack import tags as openstack_tags
from imstags.api.openstack import versions as openstack_versions


def include_routers(app: FastAPI) -> None:
    # IMS extension APIs. The tag routes come before any /v2/{project_id}/images/{image_id}
    # route so that "/v2/P/images/tags" is never read as an image id "tags".
    # The same holds for /v2/P/images/resource_instances/action.
    app.include_router(ims_tags.router)
    app.include_router(tag_queries.router)
    app.include_router(cloudimage_tags.router)
    app.include_router(ims_images.router)
    # Native OpenStack image tags, then images.
    app.include_router(openstack_tags.router)
    # Native OpenStack image API: version discovery at "/", schemas, images.
    app.include_router(openstack_versions.router)
    app.include_router(openstack_schemas.router)
    app.include_router(openstack_images.router)
    # Identity: Keystone v3 version discovery under /v3 (the root is the image API's) and tokens.
    app.include_router(identity_versions.router)
    app.include_router(identity_tokens.router)
    # Liveness and readiness probes (no credentials).
    app.include_router(health.router)
    console.mount_console(app)  # the web console's static files at /console/ (no API routes)
    # The emulator's admin API (seed, export, reset, fault rules); 404 unless configured.
    app.include_router(admin.router)
