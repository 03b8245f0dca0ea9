"""``/api/v2/resource-servers``: APIs, as Auth0 Management API v2's resource servers
(``read:resource_servers``, ``create:resource_servers``, ``update:resource_servers``,
``delete:resource_servers``).

An API is its ``identifier`` (the audience URI, fixed at creation), a ``name`` and its
``scopes`` (``[{value, description}]``; ``value`` an RFC 6749 §3.3 scope-token). ``{id}`` is
the API's ``id`` or its identifier (URL-encoded), as Auth0 takes either.

What idp cannot honour per API is refused (400 naming the property) rather than stored and
ignored: every access token is signed by the tenant's current key (``signing_alg`` is its
algorithm), lives ``ACCESS_TOKEN_TTL`` seconds (``token_lifetime``, ``token_lifetime_for_web``),
is an RFC 9068 JWT (``token_dialect: rfc9068_profile``), may come with a refresh token when
``offline_access`` is asked for (``allow_offline_access: true``), and first-party
applications never ask for consent (``skip_consent_for_verifiable_first_party_clients:
true``). Those fields are answered with these values and accepted only with them.

The management API itself (``<issuer>/api/v2/``, ``is_system: true``) is listed and
readable; it cannot be deleted, and a PATCH may rename it or change its scopes'
descriptions but never remove one of its scopes (its operators would lose their access).
Removing a scope from any other API also takes it out of that API's client grants.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator
from sqlalchemy import select

from idp.core.errors import NotFoundError, ValidationError
from idp.extensions import db, services
from idp.keys.service import current_key
from idp.management.registry import Item, Paged, paginate, route
from idp.management.service import SCOPES, management_audience
from idp.management.validation import Body, FieldsQuery, Name, Out, PageQuery
from idp.oauth import service as oauth
from idp.oauth.models import ResourceServer

TAG = "resource-servers"
ScopeValue = Annotated[
    str, StringConstraints(min_length=1, max_length=280, pattern=r"^[\x21\x23-\x5B\x5D-\x7E]+$")
]  # RFC 6749 §3.3 scope-token
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=512)]
Dialect = Literal["access_token", "access_token_authz", "rfc9068_profile", "rfc9068_profile_authz"]
DIALECT = "rfc9068_profile"  # RFC 9068 JWT access tokens, no RBAC permissions claim


# ---------------------------------------------------------------------------------- schemas
class Scope(Body):
    value: ScopeValue
    description: str = Field("", max_length=500)


class ScopeOut(Out):
    value: str
    description: str


class ResourceServerOut(Out):
    id: str
    name: str
    identifier: str = Field(description="The audience URI.")
    is_system: bool = Field(description="The management API itself.")
    scopes: list[ScopeOut]
    signing_alg: str = Field(description="The algorithm of the tenant's current signing key.")
    token_lifetime: int = Field(description="ACCESS_TOKEN_TTL, seconds (tenant-wide).")
    token_lifetime_for_web: int
    allow_offline_access: bool
    skip_consent_for_verifiable_first_party_clients: bool
    token_dialect: str


class _Settings(Body):
    """Auth0's per-API token settings; idp's are tenant-wide: only those values pass."""

    scopes: list[Scope] | None = Field(None, max_length=200)
    signing_alg: Literal["HS256", "RS256", "PS256", "ES256"] | None = None
    token_lifetime: int | None = Field(None, ge=1, le=2_592_000)
    token_lifetime_for_web: int | None = Field(None, ge=1, le=2_592_000)
    allow_offline_access: bool | None = None
    skip_consent_for_verifiable_first_party_clients: bool | None = None
    token_dialect: Dialect | None = None

    @model_validator(mode="after")
    def _unique_scopes(self) -> _Settings:
        values = [s.value for s in self.scopes or []]
        if len(set(values)) != len(values):
            raise ValueError("each scope value appears once in scopes")
        return self


class ResourceServerCreate(_Settings):
    identifier: Identifier
    name: Name | None = None


class ResourceServerUpdate(_Settings):
    """Fields sent are changed; ``scopes`` is the whole list. ``identifier`` is fixed."""

    name: Name | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_empty(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data:
            raise ValueError("send at least one of: " + ", ".join(sorted(cls.model_fields)))
        return data


class ResourceServersQuery(PageQuery, FieldsQuery):
    identifiers: list[str] | None = Field(None, description="Only these identifiers.")


# ---------------------------------------------------------------------------------- helpers
def _tenant() -> dict[str, Any]:
    """The values every API has here, whatever is asked."""
    config = services().config
    key = current_key(db.session)
    ttl = int(config["ACCESS_TOKEN_TTL"])
    return {"signing_alg": key.alg if key else str(config["SIGNING_ALG"]),
            "token_lifetime": ttl, "token_lifetime_for_web": ttl,
            "allow_offline_access": True, "token_dialect": DIALECT,
            "skip_consent_for_verifiable_first_party_clients": True}  # fmt: skip


def _is_system(api: ResourceServer) -> bool:
    return api.identifier == management_audience(services().issuer.issuer)


def api_json(api: ResourceServer, tenant: dict[str, Any] | None = None) -> dict[str, Any]:
    notes = api.scope_descriptions or {}
    return {"id": api.id, "name": api.name, "identifier": api.identifier,
            "is_system": _is_system(api),
            "scopes": [{"value": s, "description": notes.get(s, "")} for s in api.scopes],
            **(tenant or _tenant())}  # fmt: skip


def find(ident: str, lock: bool = False) -> ResourceServer:
    """By id, else by identifier (Auth0 takes either)."""
    lock_ = True if lock else None
    api = db.session.get(ResourceServer, ident, with_for_update=lock_) if len(ident) <= 40 else None
    if api is None:
        query = select(ResourceServer).where(ResourceServer.identifier == ident)
        api = db.session.scalar(query.with_for_update() if lock else query)
    if api is None:
        raise NotFoundError(f"no resource server {ident!r}")
    return api


def _honoured(body: _Settings) -> None:
    """A 400 naming the first setting idp would not honour."""
    tenant = _tenant()
    for name in ("signing_alg", "token_lifetime", "token_lifetime_for_web",
                 "allow_offline_access", "token_dialect",
                 "skip_consent_for_verifiable_first_party_clients"):  # fmt: skip
        sent = getattr(body, name)
        if sent is not None and sent != tenant[name]:
            raise ValidationError(
                f"Payload validation error: 'idp applies {tenant[name]!r} to every API "
                f"(tenant-wide), not {sent!r}' on property {name}."
            )


def _scopes(body: _Settings) -> tuple[list[str], dict[str, str]] | tuple[None, None]:
    if body.scopes is None:
        return None, None
    return [s.value for s in body.scopes], {s.value: s.description for s in body.scopes}


def _invalidate() -> None:
    services().clients.invalidate()  # cached client grants; other workers' expire in seconds


ITEM = Item(ResourceServerOut, lambda lock=False, id="": api_json(find(id, lock)))


# ---------------------------------------------------------------------------------- routes
@route("/resource-servers", scope="read:resource_servers", tag=TAG,
       summary="List resource servers", query=ResourceServersQuery,
       response=ResourceServerOut, list_key="resource_servers")  # fmt: skip
def list_resource_servers(query: ResourceServersQuery) -> Paged:
    """Oldest first; ``identifiers`` (repeated) keeps only those."""
    tenant = _tenant()
    wanted = set(query.identifiers or [])
    rows = [api_json(a, tenant) for a in oauth.list_apis(db.session)
            if not wanted or a.identifier in wanted]  # fmt: skip
    return paginate(rows, query)


@route("/resource-servers", "POST", scope="create:resource_servers", tag=TAG,
       summary="Create a resource server", body=ResourceServerCreate,
       response=ResourceServerOut, status=201)  # fmt: skip
def create_resource_server(body: ResourceServerCreate) -> dict[str, Any]:
    """``identifier`` is an absolute URI, unique (409). The token settings, when sent, must be
    the tenant's own (400 otherwise)."""
    _honoured(body)
    scopes, notes = _scopes(body)
    api = oauth.create_api(db.session, identifier=body.identifier, name=body.name or "",
                           scopes=scopes or [], descriptions=notes)  # fmt: skip
    db.session.flush()
    return api_json(api)


@route("/resource-servers/{id:path}", scope="read:resource_servers", tag=TAG,
       summary="Get a resource server", query=FieldsQuery, response=ResourceServerOut,
       item=ITEM)  # fmt: skip
def get_resource_server(id: str, query: FieldsQuery) -> dict[str, Any]:
    """By ``id`` or ``identifier``. The ``ETag`` header is this version, for ``If-Match``."""
    return api_json(find(id))


@route("/resource-servers/{id:path}", "PATCH", scope="update:resource_servers", tag=TAG,
       summary="Update a resource server", body=ResourceServerUpdate,
       response=ResourceServerOut, item=ITEM, after_commit=_invalidate)  # fmt: skip
def update_resource_server(id: str, body: ResourceServerUpdate) -> dict[str, Any]:
    """Send ``If-Match`` with the ETag read to refuse (412) a write over someone else's."""
    api = find(id, lock=True)
    _honoured(body)
    scopes, notes = _scopes(body)
    if _is_system(api) and scopes is not None:
        lost = sorted(set(SCOPES) - set(scopes))
        if lost:
            raise ValidationError(
                "The management API is a system API: its scopes cannot be removed "
                f"({', '.join(lost[:5])}{', ...' if len(lost) > 5 else ''})"
            )
    oauth.update_api(db.session, api, name=body.name, scopes=scopes, descriptions=notes)
    return api_json(api)


@route("/resource-servers/{id:path}", "DELETE", scope="delete:resource_servers", tag=TAG,
       summary="Delete a resource server", status=204, item=ITEM,
       after_commit=_invalidate)  # fmt: skip
def delete_resource_server(id: str) -> None:
    """Its client grants go with it. The management API (``is_system``) cannot be deleted."""
    api = find(id, lock=True)
    if _is_system(api):
        raise ValidationError("The management API is a system API: it cannot be deleted")
    oauth.delete_api(db.session, api.identifier)
