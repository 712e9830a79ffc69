"""Native OpenStack image tags: ``PUT`` and ``DELETE /v2/images/{image_id}/tags/{tag}``.

Reference chapter: native_openstack_apis/image_tagging_native_openstack_apis. A native tag is
one string; ``k=v`` is the IMS tag key k with value v and ``k`` the key k with the empty value
(see :mod:`imstags.domain.tags.native`), so tags written here show in every IMS tag API and
the other way round. Both answer 204 with an empty body, whatever the request's Content-Type
(glanceclient sends ``application/octet-stream``); any request body is ignored.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from imstags.api.deps import TagsDep
from imstags.api.responses import no_content
from imstags.api.security import Authenticated

router = APIRouter(tags=["Image tags (native OpenStack)"])


@router.put(
    "/v2/images/{image_id}/tags/{tag}",
    status_code=204,
    response_class=Response,
    summary="Adding a Tag (Native OpenStack API)",
)
async def add_tag(image_id: str, tag: str, principal: Authenticated, tags: TagsDep) -> Response:
    """Idempotent; ``k=v`` overwrites another value of key k. Beyond the page (letters,
    digits, ``_``, ``-``), one ``=`` separates a key from its value."""
    await tags.add_native_tag(principal.project_id, image_id, tag)
    return no_content()


@router.delete(
    "/v2/images/{image_id}/tags/{tag:path}",
    status_code=204,
    response_class=Response,
    summary="Deleting a Tag (Native OpenStack API)",
)
async def delete_tag(image_id: str, tag: str, principal: Authenticated, tags: TagsDep) -> Response:
    """A tag the image does not list is a 404 (as in Glance; the page is silent). The tag is
    the rest of the path, so that a tag written through IMS with a ``/`` in it (sent as
    ``%2F``) can be deleted too."""
    await tags.delete_native_tag(principal.project_id, image_id, tag)
    return no_content()
