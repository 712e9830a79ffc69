"""The benchmark's floor: the core endpoint's bytes with no database and no authentication.

Registered only when ``IMSTAGS_BENCH_FLOOR=1`` (never in normal serving). It answers through
the same framework, middleware and server as the core endpoint, so the difference between the
two is what the core endpoint itself costs. The body is read once per project, on the first
request, and served from memory from then on.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from imstags.services.tag_summary import SummaryBody

router = APIRouter(include_in_schema=False)
_bodies: dict[str, SummaryBody] = {}


@router.get("/_bench/floor/{project_id}")
async def floor(project_id: str, request: Request) -> Response:
    body = _bodies.get(project_id)
    if body is None:
        built: SummaryBody = await request.app.state.services.tags.summary(project_id)
        body = _bodies[project_id] = built
    headers = {"ETag": body.etag, "Cache-Control": "no-cache"}
    return Response(body.body, media_type="application/json", headers=headers)
