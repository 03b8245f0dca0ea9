"""``/api/v2/client-grants``: which machine-to-machine application may get which scopes of
which API, as Auth0 Management API v2's client grants (``read:client_grants``,
``create:client_grants``, ``update:client_grants``, ``delete:client_grants``).

A grant is ``{id, client_id, audience, scope: [...]}``: with it, the client's
client-credentials token request (RFC 6749 §4.4) for ``audience`` gets those scopes, each
defined on the API. One grant per (client, audience): a second is a 409. An unknown client
or audience is a 404, as at Auth0.

Differences from Auth0, deliberate: only ``non_interactive`` (idp's m2m) applications take
grants (400 for another type: idp gives browser apps no client-credentials grant);
idp has no organizations, so ``organization_usage`` and ``allow_any_organization`` are
refused in bodies, and the ``allow_any_organization=true`` filter matches nothing. A grant
onto the management API (``<issuer>/api/v2/``) creates that API on first use, as
``idp client-grants create`` does.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints
from sqlalchemy import select

from idp.extensions import db, services
from idp.management.registry import Item, Paged, paginate, route
from idp.management.resource_servers import ScopeValue
from idp.management.service import ensure_api, management_audience
from idp.management.validation import Body, IdString, Out, PageQuery
from idp.oauth import service as oauth
from idp.oauth.models import ClientGrant

TAG = "client-grants"
Audience = Annotated[str, StringConstraints(min_length=1, max_length=512)]


# ---------------------------------------------------------------------------------- schemas
class ClientGrantOut(Out):
    id: str
    client_id: str
    audience: str
    scope: list[str] = Field(description="The scopes of the API the client may get.")


class ClientGrantCreate(Body):
    client_id: IdString
    audience: Audience
    scope: list[ScopeValue] = Field(max_length=200)


class ClientGrantUpdate(Body):
    """The whole scope list (may be empty: the grant stays, granting nothing)."""

    scope: list[ScopeValue] = Field(max_length=200)


class ClientGrantsQuery(PageQuery):
    audience: str | None = Field(None, max_length=512, description="Only grants for this API.")
    client_id: str | None = Field(None, max_length=64, description="Only this client's grants.")
    allow_any_organization: bool | None = Field(None, description="idp has no organizations.")
    from_: str | None = Field(
        None, alias="from", pattern=r"^[0-9]{1,7}$",
        description="Checkpoint paging: the previous page's next.",
    )  # fmt: skip
    take: int | None = Field(None, ge=1, le=100, description="Checkpoint paging: page size.")


# ---------------------------------------------------------------------------------- helpers
def grant_json(grant: ClientGrant) -> dict[str, Any]:
    return {"id": grant.id, "client_id": grant.client_id, "audience": grant.audience,
            "scope": list(grant.scopes)}  # fmt: skip


def find(grant_id: str, lock: bool = False) -> ClientGrant:
    return oauth.get_client_grant(db.session, grant_id, lock)


def _invalidate() -> None:
    services().clients.invalidate()  # cached grants; other workers' expire within seconds


ITEM = Item(ClientGrantOut, lambda lock=False, id="": grant_json(find(id, lock)))


# ---------------------------------------------------------------------------------- routes
@route("/client-grants", scope="read:client_grants", tag=TAG, summary="List client grants",
       query=ClientGrantsQuery, response=ClientGrantOut, list_key="client_grants",
       checkpoint=True)  # fmt: skip
def list_client_grants(query: ClientGrantsQuery) -> Paged | dict[str, Any]:
    """Oldest first; filters ``audience`` and ``client_id``; Auth0's paging: ``page``/
    ``per_page``/``include_totals``, or (what Auth0's SDK sends) ``take`` with ``from`` (the
    previous answer's ``next``), answered ``{client_grants, next}``."""
    statement = select(ClientGrant).order_by(ClientGrant.created_at, ClientGrant.id)
    if query.audience is not None:
        statement = statement.where(ClientGrant.audience == query.audience)
    if query.client_id is not None:
        statement = statement.where(ClientGrant.client_id == query.client_id)
    rows = [] if query.allow_any_organization else [
        grant_json(g) for g in db.session.scalars(statement)
    ]  # fmt: skip
    if query.take is None and query.from_ is None:
        return paginate(rows, query)
    start, take = int(query.from_ or 0), query.take or 50
    out: dict[str, Any] = {"client_grants": rows[start : start + take]}
    if start + take < len(rows):
        out["next"] = str(start + take)
    return out


@route("/client-grants", "POST", scope="create:client_grants", tag=TAG,
       summary="Create a client grant", body=ClientGrantCreate, response=ClientGrantOut,
       status=201, after_commit=_invalidate)  # fmt: skip
def create_client_grant(body: ClientGrantCreate) -> dict[str, Any]:
    """404 for an unknown client or audience, 409 when the client already has a grant for
    the audience, 400 for a scope the API does not define."""
    issuer = services().issuer.issuer
    if body.audience == management_audience(issuer):
        ensure_api(db.session, issuer)
    grant = oauth.create_client_grant(db.session, client_id=body.client_id,
                                      audience=body.audience, scopes=list(body.scope))  # fmt: skip
    db.session.flush()
    return grant_json(grant)


@route("/client-grants/{id}", scope="read:client_grants", tag=TAG,
       summary="Get a client grant", response=ClientGrantOut, item=ITEM)  # fmt: skip
def get_client_grant(id: str) -> dict[str, Any]:
    """The ``ETag`` header is this version, for ``If-Match``."""
    return grant_json(find(id))


@route("/client-grants/{id}", "PATCH", scope="update:client_grants", tag=TAG,
       summary="Update a client grant", body=ClientGrantUpdate, response=ClientGrantOut,
       item=ITEM, after_commit=_invalidate)  # fmt: skip
def update_client_grant(id: str, body: ClientGrantUpdate) -> dict[str, Any]:
    """Takes effect at once for the management API's own tokens (their scopes are checked
    against the grant at every call), at the next token for other APIs."""
    find(id, lock=True)
    return grant_json(oauth.update_client_grant(db.session, id, list(body.scope)))


@route("/client-grants/{id}", "DELETE", scope="delete:client_grants", tag=TAG,
       summary="Delete a client grant", status=204, item=ITEM,
       after_commit=_invalidate)  # fmt: skip
def delete_client_grant(id: str) -> None:
    """The client gets no new token for the audience."""
    oauth.delete_client_grant(db.session, find(id, lock=True).id)
