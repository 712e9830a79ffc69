"""Keystone v3 tokens: ``POST``, ``GET``, ``HEAD`` and ``DELETE /v3/auth/tokens``.

The subset keystoneauth, openstacksdk and the ``openstack`` command use: password
authentication scoped to a project (by id, or by name when the project has one), answered 201
with the token in ``X-Subject-Token`` and a body whose service catalog points the ``image``
service at this server's unversioned root. A token in ``X-Auth-Token`` then authenticates every
API like an AK/SK signature does
(:meth:`~imstags.services.identity.IdentityService.principal_of_token`).

Departures from Keystone: only the ``password`` and ``token`` methods and project scope (a
request without a scope gets the user's own project); roles are fixed (``member``,
``reader``); errors keep the service's one error shape (keystoneauth reads its ``message``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from imstags.api.deps import BaseUrlDep, IdentityDep, SettingsDep
from imstags.api.responses import ERROR_RESPONSES, JsonResponse, no_content
from imstags.api.security import Authenticated
from imstags.domain import identity
from imstags.errors import BadRequest, Unauthorized
from imstags.services.identity import IssuedToken

router = APIRouter(tags=["Identity (Keystone v3)"])

SUBJECT_TOKEN = "X-Subject-Token"  # noqa: S105 - a header name, not a secret
_DOMAIN = {"id": identity.DOMAIN_ID, "name": identity.DOMAIN_NAME}


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


# Bounded before anything else sees them: names and ids are at most 255 characters (the user
# name rule), a password at most identity.PASSWORD_MAX_LENGTH.
Name = Annotated[str, StringConstraints(max_length=identity.USER_NAME_MAX_LENGTH)]
Password = Annotated[str, StringConstraints(max_length=identity.PASSWORD_MAX_LENGTH)]


class DomainRef(_Loose):
    id: Name | None = None
    name: Name | None = None


class UserRef(_Loose):
    id: Name | None = None
    name: Name | None = None
    domain: DomainRef | None = None
    password: Password


class PasswordMethod(_Loose):
    user: UserRef


class TokenMethod(_Loose):
    id: Name


class IdentityPart(_Loose):
    methods: Annotated[list[Name], Field(max_length=8)]
    password: PasswordMethod | None = None
    token: TokenMethod | None = None


class ProjectRef(_Loose):
    id: Name | None = None
    name: Name | None = None
    domain: DomainRef | None = None


class Scope(_Loose):
    project: ProjectRef | None = None


class AuthPart(_Loose):
    identity: IdentityPart
    scope: Scope | None = None


class AuthBody(_Loose):
    auth: AuthPart


class NamedRef(BaseModel):
    id: str
    name: str
    domain: DomainRef | None = None


class Endpoint(BaseModel):
    id: str
    interface: str
    region: str
    region_id: str
    url: str


class CatalogEntry(BaseModel):
    id: str
    type: str
    name: str
    endpoints: list[Endpoint]


class TokenDocument(BaseModel):
    methods: list[str]
    user: NamedRef
    project: NamedRef
    roles: list[NamedRef]
    audit_ids: list[str]
    issued_at: str
    expires_at: str
    is_domain: bool
    catalog: list[CatalogEntry] | None = None


class TokenResponse(BaseModel):
    token: TokenDocument


def _scope_project(body: AuthBody) -> ProjectRef | None:
    project = body.auth.scope.project if body.auth.scope else None
    if body.auth.scope is not None and project is None:
        raise BadRequest("Only project scope is supported.")
    return project


def _password_auth(body: AuthBody) -> identity.PasswordAuth:
    ident = body.auth.identity
    if "password" not in ident.methods or ident.password is None:
        raise Unauthorized("Only the password authentication method is supported.")
    if ident.methods != ["password"]:
        raise Unauthorized("Only the password authentication method is supported.")
    user = ident.password.user
    project = _scope_project(body)
    return identity.PasswordAuth(
        password=user.password,
        user_id=user.id,
        user_name=user.name,
        user_domain_id=user.domain.id if user.domain else None,
        user_domain_name=user.domain.name if user.domain else None,
        project_id=project.id if project else None,
        project_name=project.name if project else None,
        project_domain_id=project.domain.id if project and project.domain else None,
        project_domain_name=project.domain.name if project and project.domain else None,
    )


def _keystone_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def render_token(
    info: identity.TokenInfo, base_url: str, region: str, *, catalog: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "methods": list(info.methods),
        "user": {
            "id": info.user_id,
            "name": info.user_name,
            "domain": _DOMAIN,
            "password_expires_at": None,
        },
        "project": {"id": info.project_id, "name": info.project_name, "domain": _DOMAIN},
        "roles": [{"id": f"role-{name}", "name": name} for name in identity.ROLE_NAMES],
        "audit_ids": [info.audit_id],
        "issued_at": _keystone_time(info.issued_at),
        "expires_at": _keystone_time(info.expires_at),
        "is_domain": False,
    }
    if catalog:
        body["catalog"] = service_catalog(base_url, region)
    return {"token": body}


def service_catalog(base_url: str, region: str) -> list[dict[str, Any]]:
    """The image service at the unversioned root (openstacksdk discovers ``/v2/`` from
    there), and identity at ``/v3``."""

    def endpoint(service: str, url: str) -> dict[str, Any]:
        return {
            "id": f"{service}-public",
            "interface": "public",
            "region": region,
            "region_id": region,
            "url": url,
        }

    return [
        {
            "id": "image",
            "type": "image",
            "name": "glance",
            "endpoints": [endpoint("image", base_url)],
        },
        {
            "id": "identity",
            "type": "identity",
            "name": "keystone",
            "endpoints": [endpoint("identity", base_url + "/v3")],
        },
    ]


@router.post(
    "/v3/auth/tokens",
    status_code=201,
    summary="Issuing a token (Keystone v3, password method)",
    response_model=None,
    responses={
        201: {"model": TokenResponse, "description": f"The token is in {SUBJECT_TOKEN}"},
        401: ERROR_RESPONSES[401],
        429: ERROR_RESPONSES[429],
    },
)
async def issue_token(
    request: Request,
    identities: IdentityDep,
    settings: SettingsDep,
    base_url: BaseUrlDep,
    body: Annotated[AuthBody, Body()],
    nocatalog: str | None = None,
) -> Response:
    """Failed logins are throttled per (user, client address) and per client address (429
    with Retry-After, checked before the password is): see ``domain/throttle.py``. The
    ``token`` method (a valid token buys a new one for the same user and project, what
    keystoneauth's token plugins send) is not throttled: a token cannot be guessed."""
    if body.auth.identity.methods == ["token"]:
        given, project = _token_auth(body)
        issued = await identities.reissue(
            given, project.id if project else None, project.name if project else None
        )
    else:
        client = request.client.host if request.client else ""
        issued = await identities.login(_password_auth(body), client)
    return _issued(issued, base_url, settings.region, catalog=nocatalog is None)


def _token_auth(body: AuthBody) -> tuple[str, ProjectRef | None]:
    given = body.auth.identity.token
    if given is None:
        raise Unauthorized("The token method needs identity.token.id.")
    return given.id, _scope_project(body)


def _issued(issued: IssuedToken, base_url: str, region: str, *, catalog: bool) -> Response:
    document = render_token(issued.info, base_url, region, catalog=catalog)
    return JsonResponse(document, status_code=201, headers={SUBJECT_TOKEN: issued.token})


def _subject_token(subject: str | None) -> str:
    if not subject:
        raise BadRequest(f"The {SUBJECT_TOKEN} header is missing.")
    return subject


@router.get(
    "/v3/auth/tokens",
    summary="Validating a token (Keystone v3)",
    response_model=None,
    responses={200: {"model": TokenResponse, "description": "The subject token"}},
)
async def validate_token(
    principal: Authenticated,
    identities: IdentityDep,
    settings: SettingsDep,
    base_url: BaseUrlDep,
    x_subject_token: Annotated[str | None, Header()] = None,
    nocatalog: str | None = None,
) -> Response:
    """The subject token, which the caller may inspect only if it is its own user's."""
    subject = _subject_token(x_subject_token)
    info = await identities.inspect(principal.user_id, subject)
    document = render_token(info, base_url, settings.region, catalog=nocatalog is None)
    return JsonResponse(document, headers={SUBJECT_TOKEN: subject})


@router.head(
    "/v3/auth/tokens",
    summary="Checking a token (Keystone v3)",
    status_code=200,
    response_class=Response,
)
async def check_token(
    principal: Authenticated,
    identities: IdentityDep,
    x_subject_token: Annotated[str | None, Header()] = None,
) -> Response:
    await identities.inspect(principal.user_id, _subject_token(x_subject_token))
    return Response(status_code=200)


@router.delete("/v3/auth/tokens", status_code=204, summary="Revoking a token (Keystone v3)")
async def revoke_token(
    principal: Authenticated,
    identities: IdentityDep,
    x_subject_token: Annotated[str | None, Header()] = None,
) -> Response:
    await identities.revoke(principal.user_id, _subject_token(x_subject_token))
    return no_content()
