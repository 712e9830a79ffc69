"""Version discovery of the native image API: ``GET /``, ``GET /versions``, ``GET /{version}``.

Reference chapter: native_openstack_apis/api_version_query_native_openstack_api. ``GET /``
answers 300 with every version, as the reference and Glance do; openstacksdk reads that answer
to find ``/v2/`` under an unversioned image endpoint. ``GET /versions`` is Glance's 200 form of
the same body. No credentials are needed (clients discover before they authenticate).

Departures: only the v2 versions are listed, since imstags serves no v1 API (the reference also
lists v1.0/v1.1 as DEPRECATED); and ``GET /v2`` / ``GET /v2/`` answer like ``GET /v2.0`` et al.
(300 with the matching versions) rather than redirecting.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from imstags.api.deps import BaseUrlDep
from imstags.api.responses import JsonResponse

router = APIRouter(tags=["API versions (native OpenStack)"])

VERSIONS = (("v2.2", "CURRENT"), ("v2.1", "SUPPORTED"), ("v2.0", "SUPPORTED"))


class VersionLink(BaseModel):
    href: str
    rel: str


class Version(BaseModel):
    id: str
    status: str
    links: list[VersionLink]


class VersionList(BaseModel):
    versions: list[Version]


def version_list(base_url: str, prefix: str = "v2") -> dict[str, Any]:
    return {
        "versions": [
            {"id": ident, "status": status, "links": [{"rel": "self", "href": f"{base_url}/v2/"}]}
            for ident, status in VERSIONS
            if ident == prefix or ident.startswith(prefix + ".")
        ]
    }


_MULTIPLE: dict[int | str, dict[str, Any]] = {
    300: {"model": VersionList, "description": "Multiple Choices: the versions"}
}


@router.get(
    "/",
    status_code=300,
    summary="Querying API Versions",
    response_model=None,
    responses=_MULTIPLE,
)
async def list_versions(base_url: BaseUrlDep) -> JsonResponse:
    return JsonResponse(version_list(base_url), status_code=300)


@router.get("/versions", summary="Querying API Versions (200 form)", response_model=VersionList)
async def list_versions_ok(base_url: BaseUrlDep) -> JsonResponse:
    return JsonResponse(version_list(base_url))


def _one_version(prefix: str) -> Any:
    async def show(base_url: BaseUrlDep) -> JsonResponse:
        return JsonResponse(version_list(base_url, prefix), status_code=300)

    return show


for _path, _prefix in (
    ("/v2", "v2"), ("/v2/", "v2"), ("/v2.0", "v2.0"), ("/v2.1", "v2.1"), ("/v2.2", "v2.2"),
):  # fmt: skip
    router.add_api_route(
        _path,
        _one_version(_prefix),
        methods=["GET"],
        status_code=300,
        summary="Querying an API Version",
        response_model=None,
        responses=_MULTIPLE,
        name=f"show_version_{_prefix}",
        operation_id=f"show_version_{_path.strip('/').replace('.', '_') or 'root'}_{len(_path)}",
    )
