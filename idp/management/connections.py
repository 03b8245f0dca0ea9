"""``/api/v2/connections``: Auth0 Management API v2's connections (``read:connections``,
``create:connections``, ``update:connections``, ``delete:connections``).

A connection is ``{id, name, strategy, display_name, options, enabled_clients}`` as at Auth0,
plus ``position`` (the order of the login page's buttons). Secrets are write-only: reads omit
``client_secret`` and ``private_key`` from ``options``, as Auth0 omits ``client_secret``.
Two deliberate differences from Auth0:

* ``PATCH`` merges ``options`` onto the stored ones (a key set to ``null`` is removed) instead
  of replacing the whole object: reads never return the secrets, so a read-modify-write
  replace would drop them. ``enabled_clients``, when sent, is the whole list (as at Auth0).
* ``DELETE`` is synchronous (204, Auth0 answers 202) and refuses (409) while users hold
  identities at the connection, unless ``?force=true``, which removes those identities but
  never a user's last one; ``database`` is never deleted.

``{id}`` is the connection's id (``con_...``) or its name (names cannot contain ``_``).

``strategy: samlp`` (a SAML identity provider, ``idp.connections.samlp``) takes idp's option
names, the CLI's, not Auth0's; for a port from Auth0: ``metadataUrl`` / ``metadataXml`` are
``metadata_url`` / ``metadata_xml``, ``thumbprints`` (SHA-1) is ``idp_certificates`` (SHA-256),
``domain_aliases`` is ``domains``, ``signSAMLRequest`` is ``sign_requests``,
``protocolBinding`` (a binding URN) is ``request_binding`` (``redirect`` or ``post``),
``idpinitiated.enabled`` / ``.client_id`` are ``idp_initiated`` / ``default_client_id``,
``fieldsMap`` is ``map``; ``signingCert`` has no counterpart (certificates come from the
metadata and are pinned by fingerprint). The SP's key pair is generated (sending
``sp_private_key`` or ``sp_certificate`` is refused); reads add ``sp``: ``{entity_id,
metadata_url, acs_url, slo_url, certificate_fingerprint}``, what the IdP's operator registers.
An upstream connection (oidc, oauth2, a preset) reads with ``callback_url``, an idp extension:
the redirect URI to register at the upstream (one per connection, against mix-up).
``POST /connections/{id}/keys/rotate`` (Auth0's path for a connection's keys, scope
``update:connections``) makes a new SP key pair and answers Auth0's key shape, ``{cert,
fingerprint, thumbprint}``, with SHA-256 where Auth0 gives SHA-1.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator
from sqlalchemy import select

from idp.connections import samlp, strategies
from idp.connections import service as connections
from idp.connections.models import Connection
from idp.core.errors import ConflictError, NotFoundError
from idp.extensions import db, services
from idp.flows import federation
from idp.management.registry import Item, Paged, paginate, route
from idp.management.validation import Body, FieldsQuery, IdString, Out, PageQuery, Query

MAX_CLIENTS = 1000
TAG = "connections"


# ---------------------------------------------------------------------------------- schemas
class SpInfo(Out):
    """samlp: what the IdP's operator registers."""

    entity_id: str
    metadata_url: str
    acs_url: str
    slo_url: str
    certificate_fingerprint: str | None
    previous_certificate_fingerprint: str | None = None


class ConnectionOut(Out):
    """A connection; secrets are left out of ``options`` (write-only)."""

    id: str = Field(description="con_...")
    name: str
    strategy: str
    display_name: str | None
    options: dict[str, Any]
    enabled_clients: list[str] = Field(description="The client_ids it is enabled for.")
    position: int = Field(description="Its place among the login page's buttons.")
    sp: SpInfo | None = Field(None, description="samlp only: idp as the service provider.")
    callback_url: str | None = Field(
        None, description="oidc, oauth2 and presets (idp extension): the redirect URI to "
        "register at the upstream, one per connection (/login/callback/<name>).",
    )  # fmt: skip


def _options_doc() -> str:
    """What ``options`` takes per strategy, from the table options are validated against
    (``idp.connections.strategies.OPTIONS``), so the document cannot drift from it."""
    parts = []
    for kind, specs in strategies.OPTIONS.items():
        names = [f"{n} ({o.kind}{', required' if o.required else ''})"
                 for n, o in specs.items() if n not in samlp.GENERATED]  # fmt: skip
        parts.append(f"{kind}: {', '.join(names) or 'none'}")
    presets = ", ".join(f"{p} ({kind})" for p, (kind, _) in strategies.PRESETS.items())
    return ("The strategy's options; secret ones are write-only. " + "; ".join(parts)
            + f". Presets fill in options of their protocol: {presets}.")  # fmt: skip


Position = Field(None, ge=0, le=1_000_000, description="Order of the login page's buttons.")
Clients = Field(None, max_length=MAX_CLIENTS, description="The whole list of client_ids.")


class ConnectionCreate(Body):
    name: str = Field(min_length=1, max_length=63)
    strategy: str = Field(min_length=1, max_length=32, description=", ".join(strategies.STRATEGIES))
    display_name: str | None = Field(None, min_length=1, max_length=255)
    options: dict[str, Any] | None = Field(None, description=_options_doc())
    enabled_clients: list[IdString] | None = Clients
    position: int | None = Position


class ConnectionUpdate(Body):
    """Options are merged onto the stored ones (``null`` removes one); ``display_name: null``
    removes it; ``enabled_clients`` is the whole list."""

    display_name: str | None = Field(None, min_length=1, max_length=255)
    options: dict[str, Any] | None = Field(
        None, description="Merged onto the stored ones (null removes one). " + _options_doc()
    )
    enabled_clients: list[IdString] | None = Clients
    position: int | None = Position

    @model_validator(mode="before")
    @classmethod
    def _fixed(cls, data: Any) -> Any:
        if isinstance(data, dict):
            fixed = sorted({"name", "strategy"} & set(data))
            if fixed:
                raise ValueError(f"a connection's {' and '.join(fixed)} cannot be changed")
            if not data:
                raise ValueError("send at least one of: " + ", ".join(sorted(cls.model_fields)))
        return data


class ConnectionsQuery(PageQuery, FieldsQuery):
    strategy: list[str] = Field([], description="Only these strategies (repeatable).")
    name: str | None = Field(None, description="Only the connection of this name.")
    from_: str | None = Field(
        None,
        alias="from",
        pattern=r"^[0-9]{1,7}$",
        description="Checkpoint paging: the previous page's next.",
    )
    take: int | None = Field(None, ge=1, le=100, description="Checkpoint paging: page size.")


class DeleteQuery(Query):
    force: bool = Field(False, description="Also remove the users' identities there.")


class KeyOut(Out):
    """Auth0's key shape, with SHA-256 where Auth0 gives SHA-1."""

    cert: str
    fingerprint: str
    thumbprint: str


# ---------------------------------------------------------------------------------- helpers
def connection_json(connection: Connection) -> dict[str, Any]:
    """Auth0's shape; secrets left out of ``options`` (write-only)."""
    view = connections.connection_view(db.session, connection)
    view["options"] = {
        k: v for k, v in view["options"].items() if k not in strategies.SECRET_OPTIONS
    }
    if samlp.is_samlp(connection):
        view["sp"] = samlp.sp_info(connection, services().issuer.issuer)
    elif strategies.is_social(connection.strategy):
        view["callback_url"] = federation.redirect_uri(connection.name)
    return view


def find(ident: str, lock: bool = False) -> Connection:
    """By id (``con_...``) or name; ``lock``: the row is held until the write commits."""
    connection = db.session.get(Connection, ident, with_for_update=True if lock else None)
    if connection is None:
        by_name = select(Connection).where(Connection.name == ident)
        connection = db.session.scalar(by_name.with_for_update() if lock else by_name)
    if connection is None:
        raise NotFoundError(f"no connection {ident!r}")
    return connection


def _invalidate() -> None:
    """Clients are cached with their connections (the login page's buttons): this worker's
    cache now, other workers' at their next version check (INVALIDATION_CHECK_SECONDS)."""
    services().clients.invalidate()


ITEM = Item(ConnectionOut, lambda lock=False, id="": connection_json(find(id, lock)))


# ---------------------------------------------------------------------------------- routes
@route("/connections", scope="read:connections", tag=TAG, summary="List connections",
       query=ConnectionsQuery, response=ConnectionOut, list_key="connections",
       checkpoint=True)  # fmt: skip
def list_connections(query: ConnectionsQuery) -> Paged | dict[str, Any]:
    """Filters ``strategy`` (repeatable) and ``name``; Auth0's paging: ``page``/``per_page``/
    ``include_totals``, or (what Auth0's SDK sends) ``take`` with ``from`` (the previous
    answer's ``next``), answered ``{connections, next}`` (no ``next`` on the last page)."""
    rows = [
        connection_json(c)
        for c in connections.list_connections(db.session)
        if (not query.strategy or c.strategy in query.strategy) and query.name in (None, c.name)
    ]
    if query.take is None and query.from_ is None:
        return paginate(rows, query)
    start, take = int(query.from_ or 0), query.take or 50
    out: dict[str, Any] = {"connections": rows[start : start + take]}
    if start + take < len(rows):
        out["next"] = str(start + take)
    return out


@route("/connections", "POST", scope="create:connections", tag=TAG, status=201,
       summary="Create a connection", body=ConnectionCreate, response=ConnectionOut,
       after_commit=_invalidate)  # fmt: skip
def create_connection(body: ConnectionCreate) -> dict[str, Any]:
    """A preset strategy fills its options, the ones sent override them; secrets are sealed."""
    if db.session.scalar(select(Connection.id).where(Connection.name == body.name)):
        raise ConflictError(f"a connection named {body.name!r} already exists")
    samlp.refuse_generated(body.options)
    # samlp: the IdP metadata is read with no transaction open (prefetch commits the reads).
    metadata = samlp.prefetch(db.session, body.options or {}, strategy=body.strategy)
    connection = connections.create_connection(
        db.session, name=body.name, strategy=body.strategy, display_name=body.display_name,
        options=body.options, position=body.position, box=services().box, metadata=metadata,
    )  # fmt: skip
    db.session.flush()
    if body.enabled_clients is not None:
        connections.set_enabled_clients(db.session, connection, body.enabled_clients)
    return connection_json(connection)


@route("/connections/{id}", scope="read:connections", tag=TAG, summary="Get a connection",
       query=FieldsQuery, response=ConnectionOut, item=ITEM)  # fmt: skip
def get_connection(id: str, query: FieldsQuery) -> dict[str, Any]:
    """``{id}`` is the connection's id or its name."""
    return connection_json(find(id))


@route("/connections/{id}", "PATCH", scope="update:connections", tag=TAG, item=ITEM,
       summary="Update a connection", body=ConnectionUpdate, response=ConnectionOut,
       after_commit=_invalidate)  # fmt: skip
def update_connection(id: str, body: ConnectionUpdate) -> dict[str, Any]:
    """Options merged onto the stored ones (reads never return the secrets, so Auth0's
    replace would drop them), validated again."""
    connection = find(id)
    sent = body.model_fields_set
    display_name = body.display_name
    if "display_name" in sent and display_name is None:
        display_name = ""  # removed
    metadata = samlp.prefetch(db.session, body.options or {}, name=connection.name)
    connections.update_connection(
        db.session, connection.name, display_name=display_name, options=body.options,
        position=body.position, box=services().box, metadata=metadata,
    )  # fmt: skip
    if body.enabled_clients is not None:
        connections.set_enabled_clients(db.session, connection, body.enabled_clients)
    return connection_json(connection)


@route("/connections/{id}/keys/rotate", "POST", scope="update:connections", tag=TAG,
       summary="Rotate a samlp connection's SP key pair", response=KeyOut)  # fmt: skip
def rotate_connection_keys(id: str) -> dict[str, str]:
    """samlp: a new SP key pair (``idp.connections.samlp.rotate_certificate``); the answer is
    the new certificate, never a key."""
    from idp.connections.saml import credentials

    connection = samlp.rotate_certificate(db.session, find(id).name, services().box)
    certificate = str(connection.options["sp_certificate"])
    thumbprint = credentials.fingerprint(certificate)
    pairs = ":".join(thumbprint[i : i + 2] for i in range(0, len(thumbprint), 2)).upper()
    return {"cert": certificate, "fingerprint": pairs, "thumbprint": thumbprint}


@route("/connections/{id}", "DELETE", scope="delete:connections", tag=TAG, item=ITEM,
       summary="Delete a connection", query=DeleteQuery, status=204, errors=(409,),
       after_commit=_invalidate)  # fmt: skip
def delete_connection(id: str, query: DeleteQuery) -> None:
    """204; refused (409) while users hold identities there unless ``force=true``."""
    connections.delete_connection(db.session, find(id).name, force=query.force)
