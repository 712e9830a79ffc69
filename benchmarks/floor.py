"""The benchmark's floor: imstags's own app plus one route that answers the core endpoint's
bytes with no database read and no authentication.

The route is added to the app that :func:`imstags.api.app.create_app` builds, ahead of every
other route, and the server runs with the options of ``imstags serve`` (see
:func:`imstags.cli.serve.run_server`): the same framework, middleware and server as the core
endpoint, so the difference between the two is what the core endpoint itself costs. The body
is read once per project, on the first request, through the summary cache the core endpoint
uses, and served from memory from then on. It lives here, not in the package, because no user
needs it.

The core endpoint is served by the lean path (:mod:`imstags.api.hot_routes`), so the floor is
too: it is declared as a FastAPI route (the fallback, and the route the access log and metrics
name) and registered as a hot route, so that it goes through the same middleware, the same
lean dispatch and the same response builder (``summary_response``) as the core endpoint, with
no authentication and no database read. core/floor then still measures the endpoint's own
work, not the framework it skips.

    .venv/bin/python -m benchmarks.floor --port 9393 --workers 1
"""

from __future__ import annotations

import argparse
import logging

from fastapi import FastAPI, Request, Response

from imstags.api.app import create_app, freeze_start_up_objects
from imstags.api.hot_routes import HOT_ROUTES_STATE, HotRequest, HotRoute
from imstags.api.ims.tags import summary_response
from imstags.cli.serve import run_server
from imstags.services.tag_summary import SummaryBody
from imstags.settings import Settings

FLOOR_PATH = "/_bench/floor/{project_id}"


def add_floor_route(app: FastAPI) -> None:
    """Put the floor first, so that its routing costs least. It is a FastAPI route with the
    core endpoint's own parameters (``project_id`` and the request), and a hot route like the
    core endpoint, so that the per-request work of the frame is on both sides of the ratio
    and the difference is the endpoint's."""
    bodies: dict[str, SummaryBody] = {}
    tags = app.state.services.tags

    async def floor_body(project_id: str) -> SummaryBody:
        body = bodies.get(project_id)
        if body is None:
            body = bodies[project_id] = await tags.summary(project_id)
        return body

    async def floor(project_id: str, request: Request) -> Response:
        return summary_response(request.scope, await floor_body(project_id))

    async def hot_floor(request: HotRequest) -> Response:
        return summary_response(request.scope, await floor_body(request.params["project_id"]))

    app.add_api_route(FLOOR_PATH, floor, methods=["GET"], include_in_schema=False)
    app.router.routes.insert(0, app.router.routes.pop())
    getattr(app.state, HOT_ROUTES_STATE).insert(0, HotRoute("GET", FLOOR_PATH, hot_floor))


def create_floor_app() -> FastAPI:
    """Factory for ``uvicorn --factory``: settings from ``IMSTAGS_*``, as every worker gets."""
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper())
    app = create_app(settings)
    add_floor_route(app)
    freeze_start_up_objects()  # as create_app_from_environment does for imstags serve
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--log-level")
    args = parser.parse_args()
    settings = Settings.load(
        host=args.host, port=args.port, workers=args.workers, log_level=args.log_level
    )
    run_server(settings, f"{__name__}:create_floor_app")


if __name__ == "__main__":
    main()
