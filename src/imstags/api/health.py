"""Probes for process supervisors and load balancers: ``/healthz`` and ``/readyz``.

Neither needs credentials (a probe has none) and neither reveals anything beyond "up" or "not
ready and why, in one phrase". ``/healthz`` answers as long as the process serves HTTP, so a
supervisor restarts only a process that is really stuck; ``/readyz`` also checks that the
database answers and that its schema is at the newest migration, so a balancer stops sending
traffic to a process whose database is gone and sends it again, without any restart, once it
is back.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from imstags.api.deps import HealthDep
from imstags.api.responses import ERROR_RESPONSES

router = APIRouter(tags=["Health"])


class HealthStatus(BaseModel):
    status: str


class ReadyStatus(BaseModel):
    status: str
    database: str
    migrations: str


@router.get("/healthz", response_model=HealthStatus, summary="Liveness probe")
async def healthz() -> HealthStatus:
    """The process is alive and serving HTTP; no database access."""
    return HealthStatus(status="ok")


@router.get(
    "/readyz",
    response_model=ReadyStatus,
    summary="Readiness probe",
    responses={503: ERROR_RESPONSES[503]},
)
async def readyz(health: HealthDep) -> ReadyStatus:
    """Ready when the database answers a query and its schema is the newest migration.

    Not ready is 503 with the usual error body; the bound on how long this takes is the
    database's connect timeout (see ``storage/database.py``).
    """
    await health.check_ready()
    return ReadyStatus(status="ready", database="ok", migrations="current")
