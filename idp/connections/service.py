"""Connections, their applications and users' identities: what the CLI, the client cache, the
login pages and the Actions events read and change.

The strategies and their options are data (``idp.connections.strategies``). The connection
named ``database`` (idp's own users and passwords) always exists: migration 0013 created it,
enabled it for every application and gave every user an identity through it. New applications
get it enabled, as Auth0 does.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.connections import samlp, strategies
from idp.connections.models import Connection, ConnectionClient, Identity
from idp.core import clock
from idp.core.crypto import SecretBox, random_token
from idp.core.errors import ConflictError, NotFoundError, ValidationError
from idp.identity.models import User
from idp.oauth.models import Client
from idp.stores import STORES

DATABASE = strategies.DATABASE  # the name and the strategy of idp's own users
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def validate_name(name: str) -> str:
    if not NAME.match(name):
        raise ValidationError(
            f"a connection name is 1 to 63 of a-z, 0-9 and '-', not starting with '-': {name!r}"
        )
    return name


def create_connection(
    session: Session,
    *,
    name: str,
    strategy: str,
    display_name: str | None = None,
    options: dict[str, Any] | None = None,
    position: int | None = None,
    box: SecretBox | None = None,
    metadata: str | None = None,
) -> Connection:
    """A new connection; its options are checked against the strategy (the preset filled in)
    and its secrets sealed with ``box`` (needed when there are secrets). ``samlp``: see
    ``idp.connections.samlp`` (``metadata`` is what its ``prefetch`` read)."""
    validate_name(name)
    checked = strategies.validate_options(strategy, dict(options or {}))
    if strategies.protocol(strategy) == strategies.SAMLP:
        checked = samlp.provision(session, name, checked, metadata)
    if any(k in checked for k in strategies.SECRET_OPTIONS):
        if box is None:
            raise ValueError("secret options need the SecretBox")
        checked = strategies.seal(box, checked)
    if session.scalar(select(Connection.id).where(Connection.name == name)):
        raise ValidationError(f"a connection named {name!r} exists")
    if position is None:
        last = session.scalar(select(Connection.position).order_by(Connection.position.desc()))
        position = 0 if last is None else last + 1
    now = clock.now()
    connection = Connection(
        id="con_" + random_token(12),
        name=name,
        strategy=strategy,
        display_name=display_name,
        options=checked,
        position=position,
        created_at=now,
        updated_at=now,
    )
    session.add(connection)
    return connection


def get_connection(session: Session, name: str) -> Connection:
    connection = session.scalar(select(Connection).where(Connection.name == name))
    if connection is None:
        raise NotFoundError(f"no connection {name!r}")
    return connection


def list_connections(session: Session) -> list[Connection]:
    return list(session.scalars(select(Connection).order_by(Connection.position, Connection.name)))


def enabled_clients(session: Session, connection: Connection) -> list[str]:
    return list(
        session.scalars(
            select(ConnectionClient.client_id)
            .where(ConnectionClient.connection_id == connection.id)
            .order_by(ConnectionClient.client_id)
        )
    )


def client_connections(session: Session, client_id: str) -> tuple[str, ...]:
    """Names of the connections enabled for ``client_id``, in login-page order (one indexed
    read; the client cache keeps the answer with the client)."""
    return tuple(
        session.scalars(
            select(Connection.name)
            .join(ConnectionClient, ConnectionClient.connection_id == Connection.id)
            .where(ConnectionClient.client_id == client_id)
            .order_by(Connection.position, Connection.name)
        )
    )


def is_enabled(client: Any, name: str) -> bool:
    """Whether connection ``name`` is enabled for ``client`` (a cached ``ClientInfo``)."""
    return name in getattr(client, "connections", ())


def enable(session: Session, name: str, client_id: str) -> Connection:
    """Enable connection ``name`` for application ``client_id`` (nothing if it is already)."""
    connection = get_connection(session, name)
    if session.get(Client, client_id) is None:
        raise NotFoundError(f"no client {client_id!r}")
    if session.get(ConnectionClient, (connection.id, client_id)) is None:
        session.add(ConnectionClient(connection_id=connection.id, client_id=client_id))
    return connection


def disable(session: Session, name: str, client_id: str) -> Connection:
    connection = get_connection(session, name)
    if session.get(Client, client_id) is None:
        raise NotFoundError(f"no client {client_id!r}")
    session.execute(
        delete(ConnectionClient).where(
            ConnectionClient.connection_id == connection.id,
            ConnectionClient.client_id == client_id,
        )
    )
    return connection


def enable_defaults(session: Session, client_id: str) -> None:
    """A new application gets the database connection (Auth0 enables it on new apps)."""
    connection = get_connection(session, DATABASE)
    session.add(ConnectionClient(connection_id=connection.id, client_id=client_id))


def add_identity(
    session: Session,
    user: User,
    connection: Connection,
    upstream_user_id: str,
    profile: dict[str, Any] | None = None,
) -> Identity:
    """Give ``user`` an identity at ``connection``; one upstream account is one identity."""
    taken = session.scalar(
        select(Identity.id).where(
            Identity.connection_id == connection.id,
            Identity.upstream_user_id == upstream_user_id,
        )
    )
    if taken:
        raise ValidationError(
            f"connection {connection.name!r} already has an identity {upstream_user_id!r}"
        )
    identity = Identity(
        id="idn_" + random_token(12),
        user_id=user.id,
        connection_id=connection.id,
        provider=connection.strategy,
        upstream_user_id=upstream_user_id,
        profile=dict(profile or {}),
        created_at=clock.now(),
        user_created_at=user.created_at,
    )
    session.add(identity)
    return identity


def add_database_identity(session: Session, user: User) -> Identity:
    """The identity of a user created through the database connection: its id is the user's."""
    return add_identity(session, user, get_connection(session, DATABASE), user.id)


def find_identity(
    session: Session, connection: Connection, upstream_user_id: str
) -> Identity | None:
    """The identity of that upstream account: by (connection, upstream user id), nothing else."""
    return STORES.connections.identity(session, connection.id, upstream_user_id)


def identities_of(session: Session, user_id: str) -> list[tuple[Identity, Connection]]:
    """The user's identities, oldest first (within one second: in login-page order)."""
    rows = session.execute(
        select(Identity, Connection)
        .join(Connection, Connection.id == Identity.connection_id)
        .where(Identity.user_id == user_id)
        .order_by(Identity.created_at, Connection.position, Connection.name, Identity.id)
    )
    return [(row[0], row[1]) for row in rows]


def connection_dict(connection: Connection) -> dict[str, Any]:
    """A connection as an event or the CLI shows it (options stay out: secrets will live there)."""
    return {"id": connection.id, "name": connection.name, "strategy": connection.strategy}


def identity_dicts(session: Session, user_id: str) -> list[dict[str, Any]]:
    """``event.user.identities``, in Auth0's shape."""
    return [
        {
            "provider": identity.provider,
            "connection": connection.name,
            "user_id": identity.upstream_user_id,
            "isSocial": strategies.is_social(connection.strategy),
        }
        for identity, connection in identities_of(session, user_id)
    ]


# ------------------------------------------------------------------ what operators change
# The CLI (``idp connections``, ``idp users link|unlink``) and the management API
# (``/api/v2/connections``, ``/api/v2/users/{id}/identities``) call these; both show a
# connection through :func:`connection_view`, where secrets are write-only.


def connection_view(session: Session, connection: Connection) -> dict[str, Any]:
    """A connection for operators: options as :func:`strategies.public_options` shows them (a
    secret is ``"(set)"``, never its value nor its sealed form) and the apps it is enabled for."""
    return {
        "id": connection.id,
        "name": connection.name,
        "strategy": connection.strategy,
        "display_name": connection.display_name,
        "position": connection.position,
        "options": strategies.public_options(connection.options),
        "enabled_clients": enabled_clients(session, connection),
    }


def update_connection(
    session: Session,
    name: str,
    *,
    display_name: str | None = None,
    options: dict[str, Any] | None = None,
    position: int | None = None,
    box: SecretBox | None = None,
    metadata: str | None = None,
) -> Connection:
    """Change a connection; its name and strategy stay. ``display_name`` ``""`` removes it.
    ``options`` are merged onto the stored ones: a secret given replaces the sealed one, an
    option set to ``None`` is removed (a preset's option goes back to the preset's value), and
    the result is validated again as on creation."""
    connection = get_connection(session, name)
    given = dict(options or {})
    if samlp.is_samlp(connection):  # pins checked, the SP's generated pair left alone
        given = samlp.revise(session, connection, given, metadata)
    # Stored secrets stay sealed: validation sees a stand-in, the sealed value is put back.
    kept = {
        k: v
        for k, v in connection.options.items()
        if k in strategies.SECRET_OPTIONS and k not in given and isinstance(v, dict)
    }
    merged = {k: v for k, v in {**connection.options, **given}.items() if v is not None}
    checked = strategies.validate_options(
        connection.strategy, {k: ("(sealed)" if k in kept else v) for k, v in merged.items()}
    )
    fresh = {k: v for k, v in checked.items() if k not in kept}
    if any(k in fresh for k in strategies.SECRET_OPTIONS):
        if box is None:
            raise ValueError("secret options need the SecretBox")
        fresh = strategies.seal(box, fresh)
    connection.options = {**fresh, **{k: kept[k] for k in kept if k in checked}}
    if display_name is not None:
        connection.display_name = display_name or None
    if position is not None:
        if position < 0:
            raise ValidationError("position must be 0 or more")
        connection.position = position
    connection.updated_at = clock.now()
    return connection


def set_enabled_clients(session: Session, connection: Connection, client_ids: list[str]) -> None:
    """Auth0's ``enabled_clients``: the connection is enabled for exactly these apps."""
    wanted = list(dict.fromkeys(client_ids))
    known = set(session.scalars(select(Client.client_id).where(Client.client_id.in_(wanted))))
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise ValidationError(f"no client(s): {', '.join(unknown)}")
    current = set(enabled_clients(session, connection))
    session.execute(
        delete(ConnectionClient).where(
            ConnectionClient.connection_id == connection.id,
            ConnectionClient.client_id.not_in(wanted),
        )
    )
    for client_id in wanted:
        if client_id not in current:
            session.add(ConnectionClient(connection_id=connection.id, client_id=client_id))


def delete_connection(session: Session, name: str, force: bool = False) -> None:
    """Delete a connection and its enablements. ``database`` is never deleted (disable it per
    app instead). Identities at the connection block the delete unless ``force``, which removes
    them, but never a user's last identity: Auth0 would delete such users, idp refuses and names
    them, so no account is lost by a connection's removal."""
    connection = get_connection(session, name)
    if connection.name == DATABASE:
        raise ConflictError("the database connection cannot be deleted; disable it per app")
    here = select(Identity.user_id).where(Identity.connection_id == connection.id)
    holders = session.scalar(select(func.count()).select_from(here.subquery())) or 0
    if holders and not force:
        raise ConflictError(
            f"{holders} identit{'y' if holders == 1 else 'ies'} at {name!r}; unlink them first "
            "or force the delete (which removes them)"
        )
    elsewhere = select(Identity.user_id).where(Identity.connection_id != connection.id)
    stranded = list(
        session.scalars(
            here.where(Identity.user_id.not_in(elsewhere)).order_by(Identity.user_id).limit(11)
        )
    )
    if stranded:
        more = ", ..." if len(stranded) > 10 else ""
        raise ConflictError(
            f"deleting {name!r} would leave user(s) with no identity: "
            f"{', '.join(stranded[:10])}{more}; delete or link them first"
        )
    session.execute(delete(Identity).where(Identity.connection_id == connection.id))
    session.execute(delete(ConnectionClient).where(ConnectionClient.connection_id == connection.id))
    session.delete(connection)


def _locked_user(session: Session, user_id: str) -> User:
    """The user, its row locked (FOR UPDATE on PostgreSQL) so two concurrent unlinks cannot
    both see a second identity and remove the last two."""
    user = session.scalar(select(User).where(User.id == user_id).with_for_update())
    if user is None:
        raise NotFoundError(f"no user {user_id!r}")
    return user


def link_identity(
    session: Session,
    user_id: str,
    connection_name: str,
    upstream_user_id: str,
    profile: dict[str, Any] | None = None,
) -> Identity:
    """An operator adds an identity to a user (its ``user_id`` stays). An upstream account
    already held by anyone is refused: one upstream account is one identity."""
    user = _locked_user(session, user_id)
    connection = get_connection(session, connection_name)
    if connection.name == DATABASE:  # its identity is the user's own password account
        raise ValidationError("the database identity comes with the user; link another one")
    if not upstream_user_id or len(upstream_user_id) > 255:
        raise ValidationError("an upstream user id is 1 to 255 characters")
    held = find_identity(session, connection, upstream_user_id)
    if held is not None:
        whose = "this user" if held.user_id == user.id else "another user"
        raise ConflictError(f"{connection_name}/{upstream_user_id} is already linked to {whose}")
    try:
        with session.begin_nested():  # a concurrent link of the same account loses cleanly
            return add_identity(session, user, connection, upstream_user_id, profile)
    except IntegrityError:
        raise ConflictError(f"{connection_name}/{upstream_user_id} is already linked") from None


def unlink_identity(
    session: Session, user_id: str, connection_name: str, upstream_user_id: str
) -> None:
    """Remove one of a user's identities. The last one stays (a user with none could never sign
    in again), and so does the primary database identity (``database/<user_id>``): the
    password login does not look at identities, so removing it would hide a working login."""
    user = _locked_user(session, user_id)
    connection = get_connection(session, connection_name)
    identity = find_identity(session, connection, upstream_user_id)
    if identity is None or identity.user_id != user.id:
        raise NotFoundError(
            f"user {user_id!r} has no identity {connection_name}/{upstream_user_id}"
        )
    if connection.name == DATABASE and upstream_user_id == user.id:
        raise ConflictError("the user's database identity is its primary one; it stays")
    count = session.scalar(select(func.count()).where(Identity.user_id == user.id)) or 0
    if count <= 1:
        raise ConflictError(f"{connection_name}/{upstream_user_id} is the user's last identity")
    session.delete(identity)
