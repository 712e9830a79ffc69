"""The OpenAPI 3.1 document served at ``/openapi.json``, completed for every route generically.

FastAPI describes what each route declares. This adds what is true of all routes and so is
declared once here rather than on each: the error body for the statuses any request can get
(400 for malformed input, 401/403 on authenticated routes, 404, 413 where there is a body,
500, 503 when the database is gone), the security schemes (AK/SK signature, Keystone token)
on the routes that need credentials, and it drops FastAPI's 422 schema, since validation
errors are answered with 400 and the error body. It works from the route table, so endpoints
added later are covered without touching this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from imstags.api.responses import ERROR_DESCRIPTIONS, ErrorBody
from imstags.api.security import (
    AUTHENTICATES_IN_HANDLER,
    authenticated,
    authenticated_streamed_body,
)

ERROR_REF = "#/components/schemas/ErrorBody"
_UNUSED_SCHEMAS = ("HTTPValidationError", "ValidationError")
SECURITY_SCHEMES = {
    "AkSk": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "SDK-HMAC-SHA256 request signature (AK/SK) with a signed X-Sdk-Date.",
    },
    "Token": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Auth-Token",
        "description": "A Keystone v3 token from POST /v3/auth/tokens.",
    },
}


def _calls(dependant: Dependant) -> Iterator[Any]:
    yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def requires_credentials(route: Any) -> bool:
    """True when the route (through any dependency, or in its handler, which then says so with
    ``AUTHENTICATES_IN_HANDLER``) authenticates its caller."""
    endpoint = getattr(getattr(route, "original_route", route), "endpoint", None)
    if getattr(endpoint, AUTHENTICATES_IN_HANDLER, False):
        return True
    return any(
        call is authenticated or call is authenticated_streamed_body
        for call in _calls(route.dependant)
    )


def api_routes(app: FastAPI) -> list[Any]:
    """Every API route of the app, included routers flattened.

    Recent FastAPI keeps included routers as lazy entries in ``app.routes``; its
    ``iter_route_contexts`` yields each route with its effective path (prefix applied).
    """
    return [
        context
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
    ]


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": ERROR_DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
    }


def build_openapi(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version="3.1.0",
        description=app.description,
        routes=app.routes,
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    body_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(body_schema.pop("$defs", {}))
    schemas["ErrorBody"] = body_schema
    for name in _UNUSED_SCHEMAS:
        schemas.pop(name, None)
    components["securitySchemes"] = SECURITY_SCHEMES

    secured = {
        (route.path_format, method.lower())
        for route in api_routes(app)
        if requires_credentials(route)
        for method in route.methods or ()
    }
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            _complete_operation(operation, path, (path, method) in secured)
    return document


def _complete_operation(operation: dict[str, Any], path: str, secured: bool) -> None:
    responses = operation["responses"]
    responses.pop("422", None)
    statuses = [400, 404, 500, 503]
    if "{" in path:
        # A path parameter holding "/" can make the path another route's, with other methods.
        statuses.append(405)
    if secured:
        statuses += [401, 403]
        operation["security"] = [{"AkSk": []}, {"Token": []}]
    if "requestBody" in operation:
        statuses.append(413)
    for status in sorted(statuses):
        responses.setdefault(str(status), _error_response(status))


def install_openapi(app: FastAPI) -> None:
    """Replace FastAPI's generator with :func:`build_openapi` (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    # FastAPI documents replacing this method as the way to customise the schema.
    app.openapi = openapi  # type: ignore[method-assign]
