"""``/api/v2/openapi.json`` is built from the route registry (``idp.management.registry``) and
validates as OpenAPI 3.1; every registered route is in it with its one scope, its parameters,
its schemas and its error responses; ``/api/v2/docs`` renders it under the app's CSP."""

from __future__ import annotations

from typing import Any

import requests
from openapi_spec_validator import validate

from idp.management.registry import ROUTES, WRITES
from idp.management.service import SCOPES


def document(op: Any) -> dict[str, Any]:
    resp = requests.get(f"{op.url}/api/v2/openapi.json", timeout=30)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_the_document_is_valid_openapi_3_1(op: Any) -> None:
    doc = document(op)
    assert doc["openapi"].startswith("3.1")
    validate(doc)  # raises on an invalid document
    assert doc["servers"] == [{"url": f"{op.url}/api/v2"}]
    flows = doc["components"]["securitySchemes"]["oauth2"]["flows"]
    assert flows["clientCredentials"]["tokenUrl"] == f"{op.url}/oauth/token"
    assert set(SCOPES) <= set(flows["clientCredentials"]["scopes"])


def test_every_registered_route_is_documented_with_its_scope(op: Any) -> None:
    doc = document(op)
    assert ROUTES, "the registry is empty"
    for route in ROUTES:
        operation = doc["paths"][route.path][route.method.lower()]
        assert operation["security"] == [{"oauth2": [route.scope]}], route.endpoint
        assert operation["x-scope"] == route.scope
        assert {p["name"] for p in operation["parameters"] if p["in"] == "path"} == set(
            route.params
        )
        responses = operation["responses"]
        assert str(route.status) in responses and {"401", "403"} <= set(responses)
        if route.params:
            assert "404" in responses
        if route.body is not None:
            assert "requestBody" in operation and "400" in responses
        if route.item is not None and route.method in WRITES:
            assert "412" in responses
            assert "If-Match" in {p["name"] for p in operation["parameters"]}
    count = sum(len(methods) for methods in doc["paths"].values())
    assert count == len(ROUTES)


def test_schemas_come_from_the_models(op: Any) -> None:
    doc = document(op)
    schemas = doc["components"]["schemas"]
    create = doc["paths"]["/connections"]["post"]["requestBody"]["content"]["application/json"]
    body = schemas[create["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert body["additionalProperties"] is False and "name" in body["required"]
    assert schemas["Problem"]["required"] == ["statusCode", "error", "message"]
    listing = doc["paths"]["/connections"]["get"]
    assert {"page", "per_page", "include_totals", "strategy"} <= {
        p["name"] for p in listing["parameters"]
    }


def test_the_reference_page_renders_under_the_csp(op: Any) -> None:
    resp = requests.get(f"{op.url}/api/v2/docs", timeout=30)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    page = resp.text
    assert "<script" not in page and "style=" not in page and "<style" not in page
    for route in ROUTES:
        assert route.path in page and route.scope in page
    assert requests.get(f"{op.url}/static/management-docs.css", timeout=30).status_code == 200
