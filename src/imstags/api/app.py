"""The app factory: one settings object in, one ASGI app out."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI

from imstags import __version__
from imstags.api.errors import install_error_handlers
from imstags.api.identity.tokens import token_validator
from imstags.api.ims.summary_cache import SummaryCache
from imstags.api.middleware import InputLimitsMiddleware, RequestIdMiddleware
from imstags.api.openapi import install_openapi
from imstags.api.responses import JsonResponse
from imstags.api.routes import include_routers
from imstags.api.security import Authenticator
from imstags.api.writes import WriteRunner
from imstags.domain.secrets import SecretBox, load_or_create_key
from imstags.domain.throttle import Limit, LoginThrottle
from imstags.settings import Settings
from imstags.storage.database import Database


@dataclass
class Services:
    """What handlers reach through ``request.app.state.services``: built once per process."""

    settings: Settings
    db: Database
    box: SecretBox
    authenticator: Authenticator = field(init=False)
    summaries: SummaryCache = field(init=False)
    login_throttle: LoginThrottle = field(init=False)
    writes: WriteRunner = field(init=False)

    def __post_init__(self) -> None:
        self.authenticator = Authenticator(self)
        self.authenticator.token_validator = token_validator(self.db)
        self.summaries = SummaryCache(self.db)
        # Failed logins, counted per process: per user named in the request, and per client
        # address across users.
        settings = self.settings
        window = settings.login_failure_window_seconds
        self.login_throttle = LoginThrottle(
            Limit(settings.login_failures_per_user, window),
            Limit(settings.login_failures_per_client, window),
        )
        self.writes = WriteRunner(self.db, threads=self.settings.write_threads)


def build_services(settings: Settings, db: Database | None = None) -> Services:
    settings.ensure_data_dir()
    key = load_or_create_key(settings.secret_key, settings.data_dir)
    return Services(
        settings=settings,
        db=db or Database(settings.resolved_database_url),
        box=SecretBox(key),
    )


def create_app(settings: Settings, db: Database | None = None) -> FastAPI:
    """Build the ASGI app. The schema must already be migrated (``imstags db upgrade``)."""
    services = build_services(settings, db)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        services.writes.close()
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
    include_routers(app, services)
    install_openapi(app)
    # Added last = outermost: every response, refusals included, carries a request id.
    app.add_middleware(InputLimitsMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    return app


def create_app_from_environment() -> FastAPI:
    """Entry point for ``uvicorn --factory`` worker processes, which get their settings
    through ``IMSTAGS_*`` variables that ``imstags serve`` sets from its resolved settings."""
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper())
    return create_app(settings)
