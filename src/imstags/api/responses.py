"""Response helpers shared by every API family."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response


class JsonResponse(Response):
    """JSON rendered with orjson: several times faster than the standard library's encoder."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """The one error shape of the service: ``{"error": {"code": ..., "message": ...}}``."""
    return {"error": {"code": code, "message": message}}


def no_content() -> Response:
    return Response(status_code=204)
