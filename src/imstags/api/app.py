"""The app factory: one settings object in, one ASGI app out."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from imstags import __version__
from imstags.api.errors import install_error_handlers
from imstags.api.faults import FaultInjectionMiddleware
from imstags.api.hot_routes import install_hot_routes
from imstags.api.ims.tags import HOT_ROUTES
from imstags.api.metrics import install_metrics
from imstags.api.middleware import InputLimitsMiddleware, RequestIdMiddleware
from imstags.api.openapi import install_openapi
from imstags.api.responses import JsonResponse
from imstags.api.routes import include_routers
from imstags.logging_config import configure_logging
from imstags.services.container import Services, build_services
from imstags.settings import Settings


def create_app(
    settings: Settings, services: Services | None = None, *, hot_routes: bool = True
) -> FastAPI:
    """Build the ASGI app. The schema must already be migrated (``imstags db upgrade``).

    ``services`` defaults to those :func:`build_services` makes of ``settings``; tests pass
    their own to share a database. ``hot_routes=False`` serves every route through FastAPI
    alone, for tests that compare the lean path (:mod:`imstags.api.hot_routes`) with it.
    """
    services = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Uploads cut off by a crash: their partial data goes, their images back to queued.
        await services.image_data.reclaim_interrupted()
        yield
        services.close()
        await services.db.close_async()

    app = FastAPI(
        lifespan=lifespan,
        title="imstags",
        version=__version__,
        description="IMS (Image Management Service) image-tag API with its image catalog.",
        default_response_class=JsonResponse,
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    install_error_handlers(app)
    include_routers(app)
    observer = install_metrics(app, settings.metrics_access)
    install_openapi(app)
    # Innermost of all: the lean path runs after every check the middleware below makes.
    install_hot_routes(app, HOT_ROUTES if hot_routes else ())
    if settings.admin_token or settings.faults_file:
        # Innermost: input limits and the request id apply before a rule is checked.
        app.add_middleware(FaultInjectionMiddleware, book=services.faults)
    # Added last = outermost: every response, refusals included, carries a request id.
    app.add_middleware(InputLimitsMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware, observer=observer)
    return app


def create_app_from_environment() -> FastAPI:
    """Entry point for ``uvicorn --factory`` worker processes, which get their settings
    through ``IMSTAGS_*`` variables that ``imstags serve`` sets from its resolved settings."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    freeze_start_up_objects()
    return app


def freeze_start_up_objects() -> None:
    """Keep what start-up built out of every later garbage collection (``gc.freeze``).

    A served process holds ~140,000 objects from start-up (the framework, the drivers, the
    routes) that live as long as it does. Under concurrent load, each young collection promotes
    the objects of the requests in flight, so full collections come every few thousand
    requests, and each one walked all of start-up's objects: 50-400 ms with every request of
    the process waiting. That was the PostgreSQL core endpoint's p99 (docs/performance.md).
    Frozen, they are skipped and a full collection takes 1-20 ms. Only for served processes:
    a test run builds many apps in one process, and frozen cycles are never collected.
    """
    gc.collect()
    gc.freeze()
