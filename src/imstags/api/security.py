"""Who is calling: AK/SK signatures and tokens, both resolved to a project-scoped principal.

Every API route except version discovery and the identity endpoints depends on
:func:`authenticated`; routes with ``{project_id}`` in the path depend on :func:`project_scope`,
which also refuses a request whose path names another project than its credentials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from imstags.errors import Forbidden
from imstags.services.auth import Principal

if TYPE_CHECKING:
    from imstags.services.container import Services


async def authenticated(request: Request) -> Principal:
    services: Services = request.app.state.services
    return await services.authenticator.authenticate(request)


async def project_scope(
    project_id: str, principal: Annotated[Principal, Depends(authenticated)]
) -> Principal:
    """The principal, provided the path's ``{project_id}`` is its own project."""
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
    services: Services = request.app.state.services
    return await project_scope(project_id, await services.authenticator.authenticate(request))


Authenticated = Annotated[Principal, Depends(authenticated)]
ProjectScoped = Annotated[Principal, Depends(project_scope)]
