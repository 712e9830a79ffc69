"""Who is calling, as FastAPI dependencies: the HTTP side of :mod:`imstags.services.auth`.

Every API route except version discovery and the identity endpoints depends on
:func:`authenticated`; routes with ``{project_id}`` in the path depend on :func:`project_scope`,
which also refuses a request whose path names another project than its credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.types import Scope

from imstags.errors import Forbidden
from imstags.services.auth import BodyCheck, BodySource, Principal, header_value


def raw_header(scope: Scope, name: bytes) -> str | None:
    """The first value of a header (``name`` in lower case), straight from the ASGI scope:
    building Starlette's ``Headers`` for one or two lookups costs more than the lookups."""
    return header_value(scope["headers"], name)


async def authenticated(request: Request) -> Principal:
    """The request's principal; the authenticator gets the request's raw facts."""
    # The request's body() is awaited only for a signed request that declares a body.
    return await scope_principal(request.scope, request)


async def scope_principal(scope: Scope, body_source: BodySource) -> Principal:
    """:func:`authenticated` for a request known by its ASGI scope (the lean path,
    :mod:`imstags.api.hot_routes`, has no Request object)."""
    authenticator = scope["app"].state.services.authenticator
    principal: Principal = await authenticator.authenticate(
        scope["method"],
        scope.get("raw_path") or scope["path"],
        scope.get("query_string", b""),
        scope["headers"],
        body_source,
    )
    return principal


@dataclass(frozen=True)
class StreamedBodyPrincipal:
    """The caller of a request whose body streams past (an image data upload), and the
    check an AK/SK signature puts on that body's SHA-256 (None for a token)."""

    principal: Principal
    body_check: BodyCheck | None


async def authenticated_streamed_body(request: Request) -> StreamedBodyPrincipal:
    """Like :func:`authenticated`, without reading the body first."""
    scope = request.scope
    authenticator = request.app.state.services.authenticator
    principal, body_check = await authenticator.authenticate_streamed_body(
        scope["method"],
        scope.get("raw_path") or scope["path"],
        scope.get("query_string", b""),
        scope["headers"],
    )
    return StreamedBodyPrincipal(principal, body_check)


async def project_scope(
    project_id: str, principal: Annotated[Principal, Depends(authenticated)]
) -> Principal:
    """The principal, provided the path's ``{project_id}`` is its own project."""
    return own_project(project_id, principal)


def own_project(project_id: str, principal: Principal) -> Principal:
    if project_id != principal.project_id:
        raise Forbidden("The credentials do not grant access to this project.")
    return principal


# Set (to True) on a handler that calls project_principal itself, so the OpenAPI document
# still lists its security schemes and 401/403 answers.
AUTHENTICATES_IN_HANDLER = "imstags_authenticates_in_handler"


async def project_principal(request: Request, project_id: str) -> Principal:
    """What :data:`ProjectScoped` gives, called directly: for the hottest handler, where
    FastAPI's resolution of two nested dependencies costs as much as the check itself. Mark
    such a handler with ``AUTHENTICATES_IN_HANDLER``."""
    return own_project(project_id, await authenticated(request))


Authenticated = Annotated[Principal, Depends(authenticated)]
ProjectScoped = Annotated[Principal, Depends(project_scope)]
StreamedBodyAuthenticated = Annotated[StreamedBodyPrincipal, Depends(authenticated_streamed_body)]
