"""Who is calling: AK/SK signatures and tokens, both resolved to a project-scoped principal.

Every API route except version discovery and the identity endpoints depends on
:func:`authenticated`; routes with ``{project_id}`` in the path depend on :func:`project_scope`,
which also refuses a request whose path names another project than its credentials.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from imstags.domain import signing
from imstags.domain.credentials import find_secret
from imstags.errors import Forbidden, Unauthorized

if TYPE_CHECKING:
    from imstags.api.app import Services


@dataclass(frozen=True)
class Principal:
    project_id: str
    method: str  # "aksk" or "token"
    user_id: str | None = None


TokenValidator = Callable[[str], Principal]


class Authenticator:
    """Checks credentials; caches decrypted AK/SK secrets for a few seconds.

    The cache spares a database read and a decryption on every request; its lifetime
    (``credential_cache_seconds``) bounds how long a credential deleted through another
    process keeps working.
    """

    def __init__(self, services: Services) -> None:
        self._services = services
        self._secrets: dict[str, tuple[float, tuple[str, str] | None]] = {}
        self.token_validator: TokenValidator | None = None

    def forget(self, access: str) -> None:
        self._secrets.pop(access, None)

    def _lookup_secret(self, access: str) -> tuple[str, str] | None:
        now = time.monotonic()
        cached = self._secrets.get(access)
        if cached is not None and cached[0] > now:
            return cached[1]
        services = self._services
        with services.db.read() as session:
            found = find_secret(session, services.box, access)
        if len(self._secrets) > 10_000:
            self._secrets.clear()
        self._secrets[access] = (now + services.settings.credential_cache_seconds, found)
        return found

    async def authenticate(self, request: Request) -> Principal:
        headers = request.headers
        authorization = headers.get("authorization")
        token = headers.get("x-auth-token")
        if signing.is_sdk_signature(authorization):
            return await self._authenticate_signature(request)
        if token and self.token_validator is not None:
            return await run_in_threadpool(self.token_validator, token)
        raise Unauthorized("The request carries no valid credentials.")

    async def _authenticate_signature(self, request: Request) -> Principal:
        body = await request.body()
        scope = request.scope
        signed = signing.SignedRequest(
            method=request.method,
            raw_path=scope.get("raw_path", scope["path"].encode())
            .decode("latin-1")
            .split("?", 1)[0],
            raw_query=scope.get("query_string", b"").decode("latin-1"),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        window = self._services.settings.sdk_date_window_seconds
        project_id = await run_in_threadpool(
            signing.verify, signed, self._lookup_secret, window_seconds=window
        )
        claimed = request.headers.get("x-project-id")
        if claimed is not None and claimed != project_id:
            raise Forbidden("X-Project-Id names another project than the credentials.")
        return Principal(project_id=project_id, method="aksk")


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


Authenticated = Annotated[Principal, Depends(authenticated)]
ProjectScoped = Annotated[Principal, Depends(project_scope)]
