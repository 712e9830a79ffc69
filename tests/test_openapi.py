"""The served OpenAPI document is valid 3.1 and describes every route precisely."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from imstags.api.app import create_app
from imstags.api.openapi import api_routes, requires_credentials

# Operations whose schemas their owners have not declared yet (reported to the lead). Keep
# this list empty; an entry here is a known gap, not a permission.
PENDING: set[tuple[str, str]] = set()


@pytest.fixture(scope="module")
def document(server) -> dict[str, Any]:
    response = httpx.get(server.base_url + "/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(document: dict[str, Any]):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield path, method, operation


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def is_trivial(document: dict[str, Any], schema: dict[str, Any] | None) -> bool:
    """True for a schema that says nothing: absent, ``{}``, a bare string for a JSON body,
    or an object with no declared properties."""
    if not schema:
        return True
    schema = resolve(document, schema)
    if "anyOf" in schema or "oneOf" in schema or "allOf" in schema:
        return False
    kind = schema.get("type")
    if kind == "object":
        return not schema.get("properties") and not isinstance(
            schema.get("additionalProperties"), dict
        )
    if kind == "array":
        return is_trivial(document, schema.get("items"))
    return kind in (None, "string")


def json_schema(content: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON schema of a body; for binary data (image files), its binary string schema."""
    content = content or {}
    for media, entry in content.items():
        if media == "application/json" or media.endswith("+json"):
            return entry.get("schema")
        if media == "application/octet-stream" and entry.get("schema", {}).get("format") == (
            "binary"
        ):
            return {"type": "object", "properties": {"binary": entry["schema"]}}
    return None


def test_openapi_document_validates_as_openapi_3_1(document):
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_openapi_document_lists_every_route_of_the_app(document, settings):
    app = create_app(settings)
    documented = {(path, method.upper()) for path, method, _ in operations(document)}
    for route in api_routes(app):
        if not route.original_route.include_in_schema:
            continue  # the emulator's admin API (/_imstags/), not part of the reference
        for method in route.methods:
            assert (route.path_format, method) in documented


def test_openapi_every_operation_declares_request_and_response_schemas(document):
    gaps = []
    for path, method, operation in operations(document):
        if (method.upper(), path) in PENDING:
            continue
        request = operation.get("requestBody")
        if request and is_trivial(document, json_schema(request.get("content"))):
            gaps.append(f"{method.upper()} {path}: request body")
        # Version discovery succeeds with 300 Multiple Choices (the reference says so).
        successes = {
            s: r for s, r in operation["responses"].items() if s.startswith("2") or s == "300"
        }
        if not successes:
            gaps.append(f"{method.upper()} {path}: no success response")
        for status, response in successes.items():
            content = response.get("content")
            if status != "204" and content and is_trivial(document, json_schema(content)):
                gaps.append(f"{method.upper()} {path}: {status} response")
    assert gaps == []


def test_openapi_every_error_response_is_the_error_body(document):
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                schema = json_schema(response.get("content"))
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, method, status)
                assert "422" not in operation["responses"]
    body = document["components"]["schemas"]["ErrorBody"]
    detail = resolve(document, body["properties"]["error"])
    assert set(detail["required"]) == {"code", "message"}


def test_openapi_authenticated_operations_declare_401_403_and_security(document, settings):
    app = create_app(settings)
    by_key = {(p, m.upper()): op for p, m, op in operations(document)}
    secured = 0
    for route in api_routes(app):
        if not route.original_route.include_in_schema:
            continue  # the admin API: its own token, see tests/test_state_seed.py
        for method in route.methods:
            operation = by_key[(route.path_format, method)]
            if requires_credentials(route):
                secured += 1
                assert {"401", "403"} <= set(operation["responses"]), (route.path_format, method)
                assert operation["security"] == [{"AkSk": []}, {"Token": []}]
            else:
                assert "security" not in operation
    assert secured > 0
