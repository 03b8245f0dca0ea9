"""The management API's routes, declared once: ``@route(path, method, scope=..., body=Model,
query=Model, response=Model, ...)`` registers a view on the blueprint *and* in ``ROUTES``,
from which ``idp.management.openapi`` builds the OpenAPI 3.1 document. Nothing about a route
is written twice, so the document cannot drift from the code.

Why our own small registry on pydantic rather than flask-openapi3, spectree or APIFlask: the
API already has a blueprint, a Bearer-token check with RFC 6750 challenges and Auth0's error
body; flask-openapi3 wants its own app/blueprint classes and answers refusals in pydantic's
shape, spectree's Flask plugin answers in its own shape too and its 3.1 output is partial, and
all three serve their reference pages from a CDN (our CSP allows no outside script or style).
Pydantic does the hard parts, validation and JSON Schema 2020-12 (which OpenAPI 3.1 uses as
is); what remains here is ~200 lines of glue we can read.

What a route gets, in order: the token check for its one ``scope`` (401/403); ``query``
parsed into its model; for a write on an ``item`` route, ``If-Match`` against the item's
current ETag (412); ``body`` parsed into its model (400 naming the property); then the view,
called with the path's parameters and ``query=``/``body=`` when declared. The view returns
what ``response`` serialises (a model, a dict or a list; a :class:`Paged` for ``list_key``
routes), or ``None`` for a 204. Writes are not committed by the view: the registry records the
tenant log event (``management.write``, naming the token's client, the resource, the fields
sent but never their values) in the same transaction and commits, then runs ``after_commit``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import g, request
from pydantic import BaseModel, Field, TypeAdapter, create_model
from pydantic import ValidationError as PydanticError
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from idp.audit import events
from idp.audit import service as audit
from idp.core.errors import NotFoundError
from idp.core.net import client_ip
from idp.extensions import db, services
from idp.management.base import body as json_body
from idp.management.base import bp, no_content, problem, reply, require
from idp.management.validation import FieldsQuery, PageQuery, SchemaRefusal, refusal, where_of

_PARAM = re.compile(r"\{(\w+)(?::(path))?\}")
WRITES = ("POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Item:
    """A resource's single item, for optimistic concurrency: ``load(lock=..., **path_params)``
    returns it as a view would (404 when absent), ``model`` serialises it; its ETag is a hash
    of that serialisation."""

    model: type[BaseModel]
    load: Callable[..., Any]


@dataclass(frozen=True)
class Paged:
    """One page of a list (``items``) and how many there are in all (``total``)."""

    items: Sequence[Any]
    total: int


@dataclass(frozen=True)
class Route:
    path: str  # OpenAPI's template: /clients/{id}
    method: str
    scope: str
    summary: str
    tag: str
    endpoint: str
    description: str = ""
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None  # a type pydantic serialises; None: 204
    status: int = 200
    list_key: str | None = None
    item: Item | None = None
    id_field: str = "id"
    errors: tuple[int, ...] = ()
    after_commit: Callable[[], None] | None = None
    params: tuple[str, ...] = ()
    adapter: TypeAdapter[Any] | None = field(default=None, compare=False, repr=False)
    documented: Any = None  # the response as the document gives it (``fields``: partial)


ROUTES: list[Route] = []


def paginate(rows: Sequence[Any], query: PageQuery) -> Paged:
    """A page of a list held in memory (a large table pages in SQL and builds ``Paged``)."""
    start = query.page * query.per_page
    return Paged(rows[start : start + query.per_page], len(rows))


def dump(adapter: TypeAdapter[Any], value: Any) -> Any:
    """``value`` through its response model: what the model does not name is not answered."""
    return adapter.dump_python(
        adapter.validate_python(value), mode="json", by_alias=True, exclude_unset=True
    )


def etag(data: Any) -> str:
    """A strong ETag: a hash of the item's canonical serialisation."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return '"' + hashlib.sha256(canonical.encode()).hexdigest()[:32] + '"'


def _page_model(item: Any, key: str, checkpoint: bool = False) -> Any:
    """``list[item]``, or Auth0's ``include_totals`` wrapper of it; with ``checkpoint``, also
    Auth0's checkpoint page ``{<key>, next?}`` (``from``/``take``)."""
    name = str(getattr(item, "__name__", "Item")) + "Page"
    fields: dict[str, Any] = {k: (int, ...) for k in ("start", "limit", "length", "total")}
    fields[key] = (list[item], Field(...))
    page = create_model(name, **fields)
    if not checkpoint:
        return list[item] | page
    tail: dict[str, Any] = {key: (list[item], Field(...))}
    tail["next"] = (str | None, Field(None, description="The next from; absent at the end."))
    after = create_model(str(getattr(item, "__name__", "Item")) + "Checkpoint", **tail)
    return list[item] | page | after


def _none() -> None:
    return None


@functools.cache
def partial(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` with every property optional: what an answer is when ``fields`` chose some
    (nested objects stay whole: ``fields`` names top-level properties)."""
    fields: dict[str, Any] = {
        # a factory, not a default: the document shows no ``default: null`` for a string
        name: (
            info.annotation,
            Field(default_factory=_none, description=info.description, alias=info.alias),
        )
        for name, info in model.model_fields.items()
    }
    return create_model(f"{model.__name__}Fields", __base__=model, **fields)


def _documented(
    response: Any, query: type[BaseModel] | None, list_key: str | None, checkpoint: bool
) -> Any:
    if response is None or not (isinstance(query, type) and issubclass(query, FieldsQuery)):
        return None
    if not (isinstance(response, type) and issubclass(response, BaseModel)):
        return None
    item = partial(response)
    return _page_model(item, list_key, checkpoint) if list_key else item


def route(
    path: str,
    method: str = "GET",
    *,
    scope: str,
    summary: str,
    tag: str,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: Any = None,
    status: int = 200,
    list_key: str | None = None,
    checkpoint: bool = False,
    item: Item | None = None,
    id_field: str = "id",
    errors: tuple[int, ...] = (),
    after_commit: Callable[[], None] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a view under ``/api/v2`` + ``path`` (``{name}``, or ``{name:path}`` for one
    that may hold slashes). ``list_key`` makes the response Auth0's paged list of
    ``response`` items (``checkpoint``: or a ``{<list_key>, next}`` page the view builds);
    ``errors`` adds statuses to the document's defaults."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        shape = _page_model(response, list_key, checkpoint) if list_key else response
        spec = Route(
            path=_PARAM.sub(r"{\1}", path), method=method.upper(), scope=scope, summary=summary,
            tag=tag, endpoint=view.__name__, description=(view.__doc__ or "").strip(),
            body=body, query=query, response=shape, status=status, list_key=list_key,
            item=item, id_field=id_field, errors=errors, after_commit=after_commit,
            params=tuple(m.group(1) for m in _PARAM.finditer(path)),
            adapter=None if shape is None else TypeAdapter(shape),
            documented=_documented(response, query, list_key, checkpoint),
        )  # fmt: skip
        ROUTES.append(spec)
        flask_path = _PARAM.sub(lambda m: f"<{m.group(2) + ':' if m.group(2) else ''}"
                                f"{m.group(1)}>", path)  # fmt: skip

        @functools.wraps(view)
        def endpoint(**params: str) -> Response:
            return _serve(spec, view, params)

        bp.add_url_rule(flask_path, view.__name__, require(scope)(endpoint), methods=[method])
        return view

    return decorator


def _is_list(annotation: Any) -> bool:
    if typing.get_origin(annotation) is list:
        return True
    return any(typing.get_origin(a) is list for a in typing.get_args(annotation))


def storable(text: str) -> bool:
    """A string the database can hold: no NUL (PostgreSQL's text refuses it) and valid
    Unicode (no unpaired surrogate, which JSON's \\u escapes can carry)."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _unstorable(data: Any, loc: tuple[int | str, ...] = ()) -> tuple[int | str, ...] | None:
    """Where in a JSON value the first string the database cannot hold is (or ``None``)."""
    if isinstance(data, str):
        return None if storable(data) else loc
    if isinstance(data, dict):
        for key, value in data.items():
            if not storable(key):
                return loc
            found = _unstorable(value, (*loc, key))
            if found is not None:
                return found
    if isinstance(data, list):
        for index, value in enumerate(data):
            found = _unstorable(value, (*loc, index))
            if found is not None:
                return found
    return None


def _refuse_unstorable(data: Any, *, query: bool = False) -> None:
    loc = _unstorable(data)
    if loc is None:
        return
    prefix = "Query validation error" if query else "Payload validation error"
    where = f" on property {where_of(loc)}" if loc else ""
    reason = "String contains a NUL character or invalid Unicode"
    code = "invalid_query_string" if query else "invalid_body"
    raise SchemaRefusal(f"{prefix}: '{reason}'{where}.", code)


def parse_query(model: type[BaseModel]) -> BaseModel:
    data: dict[str, Any] = {}
    _refuse_unstorable({k: request.args.getlist(k) for k in request.args}, query=True)
    for key in request.args:
        values = request.args.getlist(key)
        info = model.model_fields.get(key)
        data[key] = values if info is not None and _is_list(info.annotation) else values[-1]
    try:
        return model.model_validate(data)
    except PydanticError as exc:
        raise refusal(exc, query=True) from None


def parse_body(model: type[BaseModel]) -> BaseModel:
    data = json_body()
    g.management_fields = sorted(k for k in data if storable(k))[:50]  # names, for the log
    _refuse_unstorable(data)
    try:
        return model.model_validate(data)
    except PydanticError as exc:
        raise refusal(exc) from None


class PreconditionFailed(Exception):
    """``If-Match`` names another version of the item (412)."""


def _check_if_match(item: Item, params: dict[str, str]) -> None:
    header = request.headers.get("If-Match")
    if header is None:
        return
    current = etag(dump(TypeAdapter(item.model), item.load(lock=True, **params)))
    tags = {t.strip() for t in header.split(",")}
    if "*" not in tags and current not in tags:
        raise PreconditionFailed(
            "The resource has changed since it was read (If-Match does not match its ETag)."
        )


def _select(data: Any, query: FieldsQuery) -> Any:
    """Auth0's ``fields``/``include_fields`` on an item or a list of items."""
    if isinstance(data, list):
        return [_select(row, query) for row in data]
    if not query.fields or not isinstance(data, dict):
        return data
    names = {f.strip() for f in query.fields.split(",") if f.strip()}
    return {k: v for k, v in data.items() if (k in names) == query.include_fields}


def _serve(spec: Route, view: Callable[..., Any], params: dict[str, str]) -> Response:
    if not all(storable(value) for value in params.values()):
        raise NotFoundError("no such resource")  # nothing stored has such an identifier
    kwargs: dict[str, Any] = dict(params)
    query = parse_query(spec.query) if spec.query else None
    if query is not None:
        kwargs["query"] = query
    if spec.item is not None and spec.method in WRITES:
        _check_if_match(spec.item, params)
    if spec.body is not None:
        kwargs["body"] = parse_body(spec.body)
    result = view(**kwargs)
    if isinstance(result, Paged):
        assert isinstance(query, PageQuery), f"{spec.endpoint}: paged routes take a PageQuery"
        result = _wrap(spec, result, query)
    data = None if spec.adapter is None else dump(spec.adapter, result)
    tag = etag(data) if spec.item is not None and spec.method != "DELETE" and data else None
    if spec.method in WRITES:
        _record_and_commit(spec, params, data)
    elif tag and tag in {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}:
        return Response(status=304, headers={"ETag": tag, "Cache-Control": "no-store"})
    if isinstance(query, FieldsQuery):
        if spec.list_key and isinstance(data, dict):
            data[spec.list_key] = _select(data[spec.list_key], query)
        else:
            data = _select(data, query)
    resp = no_content() if data is None else reply(data, spec.status)
    if tag:
        resp.headers["ETag"] = tag
    return resp


def _wrap(spec: Route, page: Paged, query: PageQuery) -> Any:
    if not query.include_totals:
        return list(page.items)
    assert spec.list_key is not None
    return {"start": query.page * query.per_page, "limit": query.per_page,
            "length": len(page.items), "total": page.total,
            spec.list_key: list(page.items)}  # fmt: skip


def _record_and_commit(spec: Route, params: dict[str, str], data: Any) -> None:
    """The tenant log event of a write, in the write's own transaction; then the commit."""
    target = params.get(spec.params[0]) if spec.params else None
    if target is None and isinstance(data, dict):
        target = data.get(spec.id_field)
    token = g.management_token
    ip = client_ip(request.remote_addr, request.headers.get("X-Forwarded-For"),
                   services().trusted_proxies)  # fmt: skip
    audit.record(
        db.session, events.MANAGEMENT_WRITE, f"{spec.summary} ({target})" if target else
        spec.summary, audit.Origin(ip, request.headers.get("User-Agent")),
        client_id=str(token["client_id"]), user_id=params.get("user_id"),
        details={"resource": spec.tag, "operation": spec.endpoint, "target": target,
                 "method": spec.method, "path": request.path[:512],
                 "fields": list(g.get("management_fields", [])),
                 **({"admin": token["admin"], "admin_id": token.get("admin_id")}
                    if token.get("admin") else {})},
    )  # fmt: skip
    try:
        db.session.commit()
    except IntegrityError:  # a unique name taken concurrently
        db.session.rollback()
        raise PreconditionConflict("The write conflicts with another one; try again.") from None
    if spec.after_commit is not None:
        spec.after_commit()


class PreconditionConflict(Exception):
    """A write refused by the database's constraints after the checks passed (409)."""


@bp.errorhandler(SchemaRefusal)
def _refused(exc: SchemaRefusal) -> Response:
    db.session.rollback()
    return problem(400, exc.message, exc.code)


@bp.errorhandler(PreconditionFailed)
def _stale(exc: PreconditionFailed) -> Response:
    db.session.rollback()
    return problem(412, str(exc), "precondition_failed")


@bp.errorhandler(PreconditionConflict)
def _conflicted(exc: PreconditionConflict) -> Response:
    return problem(409, str(exc), "conflict")
