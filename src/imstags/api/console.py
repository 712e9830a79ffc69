"""The web console at ``/console/``: static files only, served with a strict CSP.

The console is a pure client of the public API (it signs in with ``POST /v3/auth/tokens`` and
then calls the same endpoints as any SDK), so this module serves files and nothing else: no
data, no session, no cookie. Its routes are a Starlette mount rather than API routes, so they
stay out of the OpenAPI document and out of the route table that the security tests check
for credentials (the files are public, like ``/openapi.json``).

The offline API reference is Swagger UI from the ``swagger-ui-py`` package, whose static files
are served from where that package is installed (no CDN); the page that starts it is ours.
"""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from imstags.errors import NotFound

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
# Only these files of the Swagger UI package are served, with its licence.
VIEWER_FILES = {"swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"}
_SAFE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*\.(?:html|js|css|svg)$")
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    "": "text/plain; charset=utf-8",
}

# Scripts only from this origin, no inline script, no eval; the page talks only to this origin.
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# Swagger UI sets style attributes and <style> elements of its own, so its page allows inline
# styles (never inline scripts); it fetches /openapi.json from this origin and nothing else.
VIEWER_CSP = CONSOLE_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@lru_cache(maxsize=1)
def viewer_dir() -> Path | None:
    """Where the installed ``swagger-ui-py`` keeps Swagger UI's files (found without importing
    the package, which would pull in its web-framework adapters)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def _file(path: Path, csp: str) -> Response:
    if not path.is_file():
        raise NotFound("The requested resource was not found.")
    headers = {**_COMMON_HEADERS, "Content-Security-Policy": csp}
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=headers)


async def console_file(request: Request) -> Response:
    name = request.path_params.get("name") or "index.html"
    if not _SAFE_NAME.match(name):
        raise NotFound("The requested resource was not found.")
    csp = VIEWER_CSP if name == "api-reference.html" else CONSOLE_CSP
    return _file(CONSOLE_DIR / name, csp)


async def viewer_file(request: Request) -> Response:
    name = request.path_params["name"]
    directory = viewer_dir()
    if name not in VIEWER_FILES or directory is None:
        raise NotFound("The requested resource was not found.")
    return _file(directory / name, VIEWER_CSP)


async def to_console(_request: Request) -> Response:
    return RedirectResponse("console/", status_code=308)  # relative: works behind a path prefix


def mount_console(app: FastAPI) -> None:
    """Serve the console under ``/console/`` (and redirect ``/console`` there)."""
    app.router.routes.append(Route("/console", to_console, methods=["GET", "HEAD"]))
    app.router.routes.append(
        Mount(
            "/console",
            routes=[
                Route("/", console_file, methods=["GET", "HEAD"]),
                Route("/viewer/{name}", viewer_file, methods=["GET", "HEAD"]),
                Route("/{name}", console_file, methods=["GET", "HEAD"]),
            ],
        )
    )
