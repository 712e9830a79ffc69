"""``GET /metrics``: the Prometheus text format, for the readers the settings allow.

``metrics_access``: ``off`` (no route, and no per-request counting), ``loopback`` (the default:
only clients on 127.0.0.1/::1, e.g. a Prometheus on the same host or behind the reverse proxy's
own scrape rule) or ``open``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

from imstags.api.middleware import RequestObserver
from imstags.errors import Forbidden
from imstags.services import metrics

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def install_metrics(app: FastAPI, access: str) -> RequestObserver | None:
    """Add the route as ``access`` allows; returns the per-request observer (None when off)."""
    if access == "off":
        return None
    loopback_only = access == "loopback"

    async def read_metrics(request: Request) -> Response:
        client = request.client
        if loopback_only and (client is None or client.host not in LOOPBACK):
            raise Forbidden("/metrics is served to loopback clients only (metrics_access).")
        body, media_type = metrics.exposition()
        return Response(body, media_type=media_type)

    # A plain Starlette route: not part of the IMS API, so not in its OpenAPI document or its
    # route table (tests/test_openapi.py, tests/test_security.py).
    app.router.add_route("/metrics", read_metrics, methods=["GET"], include_in_schema=False)
    return metrics.observe_request
