"""The admin API under ``/_imstags/``: known state and fault rules for tests.

Not part of the reference. It exists only when ``admin_token`` is set (otherwise every route
answers 404 as an unknown path does), needs that token in ``X-Imstags-Admin-Token``, and answers
only loopback clients unless ``admin_allow_remote`` is set. A request that carries a proxy's
forwarding header counts as remote: behind a reverse proxy on the same host every client would
otherwise look like loopback. Left out of the OpenAPI document.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from imstags.api.deps import FaultsDep, SettingsDep, StateDep
from imstags.api.responses import JsonResponse, no_content
from imstags.errors import Forbidden, NotFound, Unauthorized
from imstags.services.documents import parse_document
from imstags.services.faults import parse_rule

ADMIN_TOKEN_HEADER = "x-imstags-admin-token"  # noqa: S105  # a header name, not a secret
_FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


async def require_admin(request: Request, settings: SettingsDep) -> None:
    if not settings.admin_token:
        raise NotFound("The requested resource was not found.")
    if not settings.admin_allow_remote and not _is_local(request):
        raise Forbidden("The admin API answers loopback clients only (admin_allow_remote).")
    given = request.headers.get(ADMIN_TOKEN_HEADER, "")
    if not hmac.compare_digest(given.encode(), settings.admin_token.encode()):
        raise Unauthorized("The admin token is missing or wrong.")


def _is_local(request: Request) -> bool:
    if any(name in request.headers for name in _FORWARDING_HEADERS):
        return False
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


router = APIRouter(
    prefix="/_imstags", dependencies=[Depends(require_admin)], include_in_schema=False
)


async def _document(request: Request) -> object:
    return parse_document(await request.body(), name="the request body")


DocumentDep = Annotated[object, Depends(_document)]


@router.post("/seed", status_code=201)
async def seed(document: DocumentDep, state: StateDep) -> JsonResponse:
    """Load projects, credentials, users, images and tags from a JSON or YAML document."""
    report = await state.seed_async(document)
    return JsonResponse(report.__dict__, status_code=201)


@router.get("/projects/{project_id}/export")
async def export(project_id: str, state: StateDep) -> JsonResponse:
    """The project as a seed document."""
    return JsonResponse(await state.export_async(project_id))


@router.post("/projects/{project_id}/reset")
async def reset_project(project_id: str, state: StateDep) -> JsonResponse:
    return JsonResponse({"reset": await state.reset_async(project_id)})


@router.post("/reset")
async def reset_everything(state: StateDep) -> JsonResponse:
    return JsonResponse({"reset": await state.reset_async(None)})


@router.get("/faults")
async def list_faults(faults: FaultsDep) -> JsonResponse:
    return JsonResponse({"faults": faults.listing()})


@router.post("/faults", status_code=201)
async def add_faults(document: DocumentDep, faults: FaultsDep) -> JsonResponse:
    """One rule, or a list of rules (added all or none)."""
    raws: list[Any] = document if isinstance(document, list) else [document]
    rules = [parse_rule(raw) for raw in raws]
    added = [faults.add(rule).describe() for rule in rules]
    return JsonResponse({"faults": added}, status_code=201)


@router.delete("/faults/{rule_id}")
async def remove_fault(rule_id: str, faults: FaultsDep) -> Response:
    faults.remove(rule_id)
    return no_content()


@router.delete("/faults")
async def clear_faults(faults: FaultsDep) -> JsonResponse:
    return JsonResponse({"removed": faults.clear()})
