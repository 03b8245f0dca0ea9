"""``/api/v2/openapi.json``: the OpenAPI 3.1 document, built from ``registry.ROUTES`` and the
routes' pydantic models (JSON Schema 2020-12, which OpenAPI 3.1 takes as is), never written
by hand; and ``/api/v2/docs``, the same document rendered as a page on the server (no script,
our own stylesheet: the app's CSP holds).

Both are public, as Auth0's reference is: they describe the API, not the tenant.
"""

from __future__ import annotations

import functools
from typing import Any

from flask import render_template
from pydantic import Field, TypeAdapter
from werkzeug.wrappers import Response

from idp.extensions import services
from idp.management.base import bp, reply
from idp.management.registry import ROUTES, WRITES, Route
from idp.management.service import SCOPES
from idp.management.validation import Out

REF = "#/components/schemas/{model}"
_STATUS_TEXT = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request",
                401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
                412: "Precondition Failed", 413: "Payload Too Large",
                415: "Unsupported Media Type"}  # fmt: skip
_ERROR_WHY = {
    400: "A malformed query string or body; the message names the property and the reason.",
    401: "No token, or an invalid, expired or revoked one.",
    403: "The token lacks the route's scope (named in the message and WWW-Authenticate).",
    404: "No such resource (the path's, or one the body or query names).",
    409: "The write conflicts with the current state (a name already taken, ...).",
    412: "If-Match names another version of the resource than its current ETag.",
    413: "The body is larger than 1 MiB.",
    415: "The body is not application/json.",
}


class Problem(Out):
    """Auth0's error body."""

    statusCode: int = Field(description="The HTTP status.")
    error: str = Field(description="The status's reason phrase.")
    message: str = Field(description="What went wrong, naming the property for a 400.")
    errorCode: str | None = Field(None, description="A stable code.")


def _errors(route: Route) -> list[int]:
    codes = {401, 403, *route.errors}
    if route.body or route.query or route.params:
        codes.add(400)
    if route.params or route.body or _required_query(route):  # the path's, or one named
        codes.add(404)
    if route.body:
        codes |= {413, 415}
    if route.method in ("POST", "PUT", "PATCH") and route.body:
        codes.add(409)
    if route.item is not None and route.method in WRITES:
        codes.add(412)
    return sorted(codes)


def _required_query(route: Route) -> bool:
    """A required query parameter names something (``?user_id=``) that may not exist."""
    query = route.query
    return query is not None and any(f.is_required() for f in query.model_fields.values())


def _parameters(route: Route) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in route.params
    ]
    if route.item is not None and route.method in WRITES:
        params.append({"name": "If-Match", "in": "header", "required": False,
                       "description": "The ETag of the version this write is based on.",
                       "schema": {"type": "string"}})  # fmt: skip
    if route.query is None:
        return params
    schema = route.query.model_json_schema(mode="validation", ref_template=REF)
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        entry: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": _not_null(prop),
        }
        if "description" in prop:
            entry["description"] = prop["description"]
        params.append(entry)
    return params


def _not_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is never JSON null: ``str | None`` is documented as ``str``."""
    schema = {k: v for k, v in prop.items() if k not in ("title", "description")}
    branches = [b for b in schema.get("anyOf", []) if b != {"type": "null"}]
    if "anyOf" in schema and len(branches) == 1:
        schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **branches[0]}
    if "default" in schema and schema["default"] is None:
        del schema["default"]
    return schema


def _operation(route: Route, schemas: dict[Any, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.endpoint,
        "summary": route.summary,
        "tags": [route.tag],
        "security": [{"oauth2": [route.scope]}],
        "x-scope": route.scope,
        "parameters": _parameters(route),
    }
    if route.description:
        op["description"] = route.description
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": schemas[(f"{route.endpoint}.body", "validation")]}
            },
        }
    ok: dict[str, Any] = {"description": _STATUS_TEXT.get(route.status, "OK")}
    if route.response is not None:
        ok["content"] = {"application/json": {
            "schema": schemas[(f"{route.endpoint}.response", "serialization")]}}  # fmt: skip
    if route.item is not None and route.method != "DELETE" and route.response is not None:
        ok["headers"] = {"ETag": {"description": "The item's version, for If-Match.",
                                  "schema": {"type": "string"}}}  # fmt: skip
    responses: dict[str, Any] = {str(route.status): ok}
    for code in _errors(route):
        responses[str(code)] = {"description": _ERROR_WHY[code], "content": {
            "application/json": {"schema": {"$ref": REF.format(model="Problem")}}}}  # fmt: skip
    op["responses"] = responses
    return op


def build(issuer: str) -> dict[str, Any]:
    """The document for the routes registered so far."""
    inputs: list[tuple[Any, Any, TypeAdapter[Any]]] = [
        ("Problem", "serialization", TypeAdapter(Problem))
    ]
    for route in ROUTES:
        if route.body is not None:
            inputs.append((f"{route.endpoint}.body", "validation", TypeAdapter(route.body)))
        if route.response is not None:
            shape = route.documented if route.documented is not None else route.response
            inputs.append((f"{route.endpoint}.response", "serialization", TypeAdapter(shape)))
    schemas, defs = TypeAdapter.json_schemas(inputs, ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, schemas)
    issuer = issuer.rstrip("/")
    scopes = dict.fromkeys([*SCOPES, *(r.scope for r in ROUTES)])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "idp Management API",
            "version": "2",
            "description": "Auth0 Management API v2 shapes; see README.md.",
        },
        "servers": [{"url": f"{issuer}/api/v2"}],
        "tags": [{"name": t} for t in dict.fromkeys(r.tag for r in ROUTES)],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "oauth2": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": f"{issuer}/oauth/token",
                            "scopes": {s: _scope_text(s) for s in scopes},
                        }
                    },
                }
            },
        },
    }


def _scope_text(scope: str) -> str:
    verb, _, noun = scope.partition(":")
    return f"{verb.capitalize()} {noun.replace('_', ' ')}"


@functools.lru_cache(maxsize=4)
def _cached(issuer: str, count: int) -> dict[str, Any]:
    return build(issuer)


def current() -> dict[str, Any]:
    return _cached(services().issuer.issuer, len(ROUTES))


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return reply(current())


def _ref_name(schema: Any) -> str | None:
    if isinstance(schema, dict) and "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    return None


def _type_text(schema: Any) -> str:
    """A property's type in a few words, for the page."""
    if not isinstance(schema, dict):
        return ""
    if (name := _ref_name(schema)) is not None:
        return name
    if "anyOf" in schema:
        return " | ".join(_type_text(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    if schema.get("type") == "array":
        return f"array of {_type_text(schema.get('items', {})) or 'any'}"
    return str(schema.get("type", "any"))


@bp.get("/docs")
def docs_page() -> str:
    """The reference, rendered here from the document (no script: the CSP allows none)."""
    document = current()
    operations = [
        (path, method.upper(), op)
        for path, methods in document["paths"].items()
        for method, op in methods.items()
    ]
    return render_template(
        "management_docs.html", doc=document, operations=operations,
        schemas=document["components"]["schemas"], type_text=_type_text, ref_name=_ref_name,
    )  # fmt: skip
