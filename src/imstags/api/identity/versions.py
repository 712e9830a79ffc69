"""Identity version discovery: ``GET /v3``.

keystoneauth, given ``auth_url=http://host:port/v3``, first reads that URL to learn the
identity version and the URL to post credentials to. The root ``/`` belongs to the image API's
version list (openstacksdk reads it for the image service), so identity answers only under
``/v3``, which is all keystoneauth asks for. No credentials are needed.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from imstags.api.deps import BaseUrlDep
from imstags.api.responses import JsonResponse

router = APIRouter(tags=["Identity (Keystone v3)"])

IDENTITY_VERSION = "v3.14"


class Link(BaseModel):
    rel: str
    href: str


class MediaType(BaseModel):
    base: str
    type: str


class IdentityVersion(BaseModel):
    id: str
    status: str
    updated: str
    links: list[Link]
    media_types: list[MediaType] = Field(alias="media-types")


class IdentityVersionDocument(BaseModel):
    version: IdentityVersion


async def _version(base_url: BaseUrlDep) -> JsonResponse:
    return JsonResponse(
        {
            "version": {
                "id": IDENTITY_VERSION,
                "status": "stable",
                "updated": "2020-04-07T00:00:00Z",
                "links": [{"rel": "self", "href": f"{base_url}/v3/"}],
                "media-types": [
                    {
                        "base": "application/json",
                        "type": "application/vnd.openstack.identity-v3+json",
                    }
                ],
            }
        }
    )


for _path in ("/v3", "/v3/"):
    router.add_api_route(
        _path,
        _version,
        methods=["GET"],
        summary="Identity API version (Keystone v3)",
        response_model=IdentityVersionDocument,
        name=f"identity_version{'_slash' if _path.endswith('/') else ''}",
    )
