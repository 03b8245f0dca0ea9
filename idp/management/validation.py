"""Pydantic base models of the management API and Auth0's wording of their refusals.

A request body is a :class:`Body` (strict: a JSON string is never taken for a number, nor a
number for a string; unknown fields refused), a query string a :class:`Query` (lax: every
value arrives as a string; unknown parameters refused). A refusal is Auth0's 400,
``Payload validation error: 'Expected type string but found type integer' on property name``
(``Query validation error: ...`` for the query string), ``errorCode`` ``invalid_body`` or
``invalid_query_string``; the first error is named, as Auth0 does.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticError
from pydantic_core import ErrorDetails

_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number",
               list: "array", dict: "object", type(None): "null"}  # fmt: skip
_EXPECTED = {"string": "string", "int": "integer", "bool": "boolean", "list": "array",
             "dict": "object", "model": "object", "float": "number", "tuple": "array",
             "set": "array", "literal": None}  # fmt: skip


class Body(BaseModel):
    """A JSON request body: strict types, no unknown field."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=False)


class Query(BaseModel):
    """A query string: values are strings converted (``"true"``, ``"5"``), no unknown key."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    """A response shape. ``extra="ignore"``: a view may hand a dict with more than is shown,
    and what the model does not name is never answered."""

    model_config = ConfigDict(extra="ignore")


class PageQuery(Query):
    """Auth0's offset paging: ``page`` (0-based), ``per_page`` (at most 100) and
    ``include_totals`` (``{start, limit, length, total, <items>}`` instead of a bare list)."""

    page: int = Field(0, ge=0, le=1_000_000, description="Page index, 0-based.")
    per_page: int = Field(50, ge=1, le=100, description="Items per page, at most 100.")
    include_totals: bool = Field(False, description="Wrap the list with its totals.")


class FieldsQuery(Query):
    """Auth0's field selection on reads: ``fields=a,b`` with ``include_fields`` (true: only
    those; false: all but those). Auth0's SDK always sends ``include_fields``."""

    fields: str | None = Field(None, max_length=1024, description="Comma-separated fields.")
    include_fields: bool = Field(True, description="Include (true) or exclude the fields.")


def _int_as_string(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
IdString = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
IntOrString = Annotated[str, BeforeValidator(_int_as_string), StringConstraints(max_length=255)]
"""A string that Auth0 also takes as a number (an upstream ``user_id``)."""


class SchemaError(ValueError):
    """A request body refused before its model is applied (not JSON, not an object, too large,
    not ``application/json``) or by a view's own check: 400, or ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class SchemaRefusal(Exception):
    """A request that does not fit its model: Auth0's 400 (``message``, ``code``)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _json_type(value: Any) -> str:
    for kind, name in _JSON_TYPES.items():
        if type(value) is kind:
            return name
    return type(value).__name__


def where_of(loc: tuple[int | str, ...]) -> str:
    """A property's path as Auth0 names it: ``sink.httpEndpoint``, ``bindings[0].ref``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def reason(error: ErrorDetails) -> tuple[str, str]:
    """Auth0's phrase for one pydantic error, and the property it is about ("" for the root)."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    loc = tuple(error["loc"])
    if kind == "extra_forbidden":
        return f"Additional properties not allowed: {loc[-1]}", where_of(loc[:-1])
    if kind == "missing":
        return f"Missing required property: {loc[-1]}", where_of(loc[:-1])
    where = where_of(loc)
    expected = _EXPECTED.get(kind.split("_")[0])
    if kind.endswith(("_type", "_parsing")) and expected:
        if kind.endswith("_parsing") and isinstance(value, str):
            return f"Expected type {expected} but found {value[:40]!r}", where
        return f"Expected type {expected} but found type {_json_type(value)}", where
    if kind in ("literal_error", "enum"):
        return f"No enum match for: {value!r}, expected {ctx.get('expected')}", where
    if kind == "string_too_short":
        return f"String is too short ({len(str(value))} chars), minimum {ctx['min_length']}", where
    if kind == "string_too_long":
        return f"String is too long ({len(str(value))} chars), maximum {ctx['max_length']}", where
    if kind == "too_long":
        return f"Array is too long ({ctx.get('actual_length')}), maximum {ctx['max_length']}", where
    if kind == "too_short":
        return f"Array is too short, minimum {ctx['min_length']}", where
    if kind in ("greater_than_equal", "greater_than"):
        return f"Value {value} is less than minimum {ctx.get('ge', ctx.get('gt'))}", where
    if kind in ("less_than_equal", "less_than"):
        return f"Value {value} is greater than maximum {ctx.get('le', ctx.get('lt'))}", where
    if kind == "value_error":
        return str(ctx.get("error", error["msg"])), where
    return error["msg"], where


def refusal(exc: PydanticError, *, query: bool = False) -> SchemaRefusal:
    """The first error of ``exc`` in Auth0's words, naming the property."""
    phrase, where = reason(exc.errors(include_url=False)[0])
    prefix = "Query validation error" if query else "Payload validation error"
    message = f"{prefix}: '{phrase}'" + (f" on property {where}." if where else ".")
    return SchemaRefusal(message, "invalid_query_string" if query else "invalid_body")
